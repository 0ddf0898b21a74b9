// Where a sparse MLA call keeps its temporaries inside the caller's workspace (plain C++, shared
// by the planner and the launcher): the staged path's bf16 rows and rebuilt indices, and the
// split path's fp32 partials (SPEC §4). Every part starts on a 256-byte boundary.
#pragma once

#include <cstdint>

namespace dsa::gpu::detail {

inline constexpr std::int64_t kWorkspaceAlign = 256;
inline constexpr int kMaxSplits = 64;

struct MlaWorkspaceLayout {
  std::int64_t staged_rows = 0, staged_rows_bytes = 0;  // bf16 [T][K][D_qk]
  std::int64_t rebuilt = 0, rebuilt_bytes = 0;          // int32 [T][K]
  std::int64_t part_o = 0, part_o_bytes = 0;            // fp32 [S][T][H][512]
  std::int64_t part_lse = 0, part_lse_bytes = 0;        // fp32 [S][T][H]
  std::int64_t part_max = 0, part_max_bytes = 0;        // fp32 [S][T][H]
  std::int64_t total = 0;
};

inline std::int64_t align_up(std::int64_t x) { return (x + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }

// Sizes are validated by the planner before this is called (no overflow for accepted problems).
inline MlaWorkspaceLayout mla_workspace_layout(std::int64_t rows, std::int32_t heads, std::int64_t slots, int dim_qk,
                                               bool staged, int num_splits) {
  MlaWorkspaceLayout w;
  std::int64_t at = 0;
  if (staged) {
    w.staged_rows = at;
    w.staged_rows_bytes = rows * slots * dim_qk * 2;
    at = align_up(at + w.staged_rows_bytes);
    w.rebuilt = at;
    w.rebuilt_bytes = rows * slots * 4;
    at = align_up(at + w.rebuilt_bytes);
  }
  if (num_splits > 1) {
    const std::int64_t rh = static_cast<std::int64_t>(num_splits) * rows * heads;
    w.part_o = at;
    w.part_o_bytes = rh * 512 * 4;
    at = align_up(at + w.part_o_bytes);
    w.part_lse = at;
    w.part_lse_bytes = rh * 4;
    at = align_up(at + w.part_lse_bytes);
    w.part_max = at;
    w.part_max_bytes = rh * 4;
    at = align_up(at + w.part_max_bytes);
  }
  w.total = at;
  return w;
}

}  // namespace dsa::gpu::detail
