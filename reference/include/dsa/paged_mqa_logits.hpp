// paged_mqa_logits (SPEC §6.2): fp8 MQA logits of the lightning indexer over a paged index K
// cache. One plain parameter struct, its validation, and the gold (fp64) and fast (fp32) paths.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/formats.hpp"
#include "dsa/layouts.hpp"
#include "dsa/mqa_logit_formula.hpp"
#include "dsa/visible_range.hpp"

namespace dsa {

struct PagedMqaLogitsParams {
  std::int64_t batch = 0;      // B
  std::int64_t next_n = 1;     // N: query rows per sequence (decode next_n), ≥ 1
  std::int64_t num_heads = 0;  // H
  std::int64_t head_dim = 0;   // D; must equal cache.geo.head_dim

  std::span<const std::uint8_t> q;  // [B][N][H][D] fp8 codes, contiguous (q scale folded into weights)
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  std::span<const float> weights;   // [B·N][H] fp32, signed, contiguous

  ContextLens context_lens_kind = ContextLens::per_sequence;
  std::span<const std::int32_t> context_lens;  // [B] (per_sequence) or [B][N] (per_row), each ≥ 0

  std::span<const std::int32_t> block_table;   // [B][max_blocks]; only entries a visible position needs are read
  std::int64_t max_blocks = 0;

  IndexKCacheView cache;                        // K codes + per-token fp32 scales (SPEC §6.1)
  IndexKLayout reader_layout = IndexKLayout::standard;  // the layout the reader expects; cache.geo.layout must match
  KScaleAt k_scale_at = KScaleAt::after_head_sum;        // where s_K enters (reader model)

  std::int64_t max_ctx = 0;          // logits width: positions [0, max_ctx) of every row are written
  std::span<float> logits;           // [B·N][logits_row_stride] fp32; [max_ctx, row_stride) untouched
  std::int64_t logits_row_stride = 0;  // elements, ≥ max_ctx (DeepGEMM aligns it to 256)

  std::int64_t rows() const { return batch * next_n; }
};

// SPEC §8: shapes, sizes, the layout tag (dsa::LayoutMismatch naming both layouts), context
// lengths ≥ 0, and every block-table entry that a visible position needs in [0, num_blocks) and
// within max_blocks. Entries no visible position needs are not read. Throws dsa::InvalidArgument.
void validate(const PagedMqaLogitsParams& p);

// Visible range of output row r = b·N + i (see paged_visible_range). No validation.
VisibleRange visible_range(const PagedMqaLogitsParams& p, std::int64_t row);
// All B·N ranges, validated first (the form topk_indices and check_topk take).
std::vector<VisibleRange> visible_ranges(const PagedMqaLogitsParams& p);

// Both write logit[r][t] for every visible t and −inf for every other t of [0, max_ctx), after
// validating (nothing is written on a validation error).
namespace gold {
// fp64 per the formula; the dot of fp8 operands is exact, the result is rounded once to fp32.
void paged_mqa_logits(const PagedMqaLogitsParams& p);
}  // namespace gold
namespace fast {
// fp32, Eigen + OpenMP: per sequence and 256-position block, K is decoded into a dense tile that
// does not depend on the cache layout, page size or physical block numbers, multiplied with the
// sequence's N·H query rows in one GEMM, then relu and the weighted head sum in head order.
// Hence the same logits, bit for bit, for standard and preshuffle caches, any page size and
// any relabelling of physical blocks (SPEC §11).
void paged_mqa_logits(const PagedMqaLogitsParams& p);
}  // namespace fast

}  // namespace dsa
