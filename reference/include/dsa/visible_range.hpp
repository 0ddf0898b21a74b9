// Which key positions a lightning-indexer query row sees (SPEC §6.2, §6.3) — the one definition
// that the gold and fast logits, top-k, the top-k predicate, the write contracts and the GPU
// kernels share. Host/device.
#pragma once

#include <cstdint>

#include "dsa/hd.hpp"

namespace dsa {

// Positions [begin, end) of one query row; empty when end ≤ begin.
struct VisibleRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;

  DSA_HD constexpr bool contains(std::int64_t t) const { return t >= begin && t < end; }
  DSA_HD constexpr std::int64_t size() const { return end > begin ? end - begin : 0; }
  DSA_HD constexpr bool empty() const { return end <= begin; }
  friend constexpr bool operator==(const VisibleRange&, const VisibleRange&) = default;
};

// How paged_mqa_logits receives its context lengths.
enum class ContextLens : std::uint8_t {
  per_sequence,  // [B]: row i of sequence b sees t ≤ ctx[b] − N + i   (DeepGEMM 1-D)
  per_row,       // [B][N]: row (b, i) sees t < ctx[b][i]              (DeepGEMM 2-D)
};

inline const char* to_string(ContextLens c) { return c == ContextLens::per_sequence ? "per_sequence" : "per_row"; }

// Row (b, i) of paged_mqa_logits: always a prefix [0, end), clipped to [0, max_ctx).
// `context_lens` is the [B] or [B][N] array named by `kind`.
DSA_HD constexpr VisibleRange paged_visible_range(ContextLens kind, const std::int32_t* context_lens,
                                                  std::int64_t b, std::int64_t i, std::int64_t next_n,
                                                  std::int64_t max_ctx) {
  std::int64_t end = kind == ContextLens::per_sequence
                         ? static_cast<std::int64_t>(context_lens[b]) - next_n + i + 1
                         : static_cast<std::int64_t>(context_lens[b * next_n + i]);
  if (end > max_ctx) end = max_ctx;
  if (end < 0) end = 0;
  return {0, end};
}

// Row i of mqa_logits: t ∈ [ks[i], ke[i]) ∩ [0, n_kv).
DSA_HD constexpr VisibleRange ranged_visible_range(std::int32_t ks, std::int32_t ke, std::int64_t n_kv) {
  std::int64_t begin = ks < 0 ? 0 : ks;
  std::int64_t end = ke > n_kv ? n_kv : ke;
  if (end < begin) end = begin;
  return {begin, end};
}

}  // namespace dsa
