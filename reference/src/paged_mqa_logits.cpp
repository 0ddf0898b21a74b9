// paged_mqa_logits (SPEC §6.2): validation and the gold and fast paths over the paged index K cache.
#include "dsa/paged_mqa_logits.hpp"

#include <fmt/format.h>

#include <string>

#include "dsa/error.hpp"
#include "indexer_validation.hpp"
#include "mqa_logits_engine.hpp"

namespace dsa {

namespace {

std::size_t idx(std::int64_t i) { return static_cast<std::size_t>(i); }

detail::LogitsProblem problem(const PagedMqaLogitsParams& p, const std::vector<VisibleRange>& ranges) {
  detail::LogitsProblem lp;
  lp.rows = p.rows();
  lp.heads = p.num_heads;
  lp.dim = p.head_dim;
  lp.q = p.q.data();
  lp.q_fp8 = p.q_fp8;
  lp.weights = p.weights.data();
  lp.ranges = ranges.data();
  lp.group_rows = p.next_n;
  lp.k_scale_at = p.k_scale_at;
  lp.max_ctx = p.max_ctx;
  lp.logits = p.logits.data();
  lp.row_stride = p.logits_row_stride;
  return lp;
}

}  // namespace

void validate(const PagedMqaLogitsParams& p) {
  if (p.batch < 0) throw InvalidArgument("batch", fmt::format("must be ≥ 0 (got {})", p.batch));
  if (p.next_n < 1) throw InvalidArgument("next_n", fmt::format("must be ≥ 1 (got {})", p.next_n));
  if (p.num_heads < 1) throw InvalidArgument("num_heads", fmt::format("must be ≥ 1 (got {})", p.num_heads));
  validate(p.cache, "cache");
  require_layout(p.cache.geo, p.reader_layout, "cache");
  const auto& g = p.cache.geo;
  if (p.head_dim != g.head_dim)
    throw InvalidArgument("head_dim", fmt::format("must equal cache.head_dim = {} (got {})", g.head_dim, p.head_dim));
  const auto rows_checked = detail::checked_product({p.batch, p.next_n});
  if (!rows_checked) throw InvalidArgument("next_n", fmt::format("B·N = {}·{} exceeds int64", p.batch, p.next_n));
  const std::int64_t rows = *rows_checked;
  detail::require_elements(p.q.size(), {rows, p.num_heads, p.head_dim}, "q", "B·N·H·D");
  detail::require_elements(p.weights.size(), {rows, p.num_heads}, "weights", "B·N·H");
  const bool per_row = p.context_lens_kind == ContextLens::per_row;
  detail::require_elements(p.context_lens.size(), {per_row ? rows : p.batch}, "context_lens",
                           per_row ? "B·N (per_row)" : "B (per_sequence)");
  if (p.max_blocks < 0) throw InvalidArgument("max_blocks", fmt::format("must be ≥ 0 (got {})", p.max_blocks));
  detail::require_elements(p.block_table.size(), {p.batch, p.max_blocks}, "block_table", "B·max_blocks");
  if (p.max_ctx < 0) throw InvalidArgument("max_ctx", fmt::format("must be ≥ 0 (got {})", p.max_ctx));
  if (p.logits_row_stride < p.max_ctx)
    throw InvalidArgument("logits_row_stride",
                          fmt::format("must be ≥ max_ctx = {} (got {})", p.max_ctx, p.logits_row_stride));
  detail::require_rows(p.logits.size(), rows, p.logits_row_stride, p.max_ctx, "logits", "(B·N−1)·row_stride + max_ctx");

  for (std::size_t j = 0; j < (per_row ? idx(rows) : idx(p.batch)); ++j)
    if (p.context_lens[j] < 0)
      throw InvalidArgument("context_lens", fmt::format("entry {} is {}: must be ≥ 0", j, p.context_lens[j]));
  // Every block a visible position of sequence b needs: [0, ceil(end_b / P)), end_b the largest
  // visible end of its rows.
  for (std::int64_t b = 0; b < p.batch; ++b) {
    std::int64_t end = 0;
    for (std::int64_t i = 0; i < p.next_n; ++i) end = std::max(end, visible_range(p, b * p.next_n + i).end);
    const std::int64_t blocks = (end + g.page_tokens - 1) / g.page_tokens;
    if (blocks > p.max_blocks)
      throw InvalidArgument("block_table",
                            fmt::format("sequence {} sees {} positions, which need {} blocks of {} tokens, but "
                                        "max_blocks is {}",
                                        b, end, blocks, g.page_tokens, p.max_blocks));
    for (std::int64_t j = 0; j < blocks; ++j) {
      const std::int32_t blk = p.block_table[idx(b * p.max_blocks + j)];
      if (blk < 0 || blk >= g.num_blocks)
        throw InvalidArgument("block_table",
                              fmt::format("entry [{}][{}] is {}: a visible position needs it, so it must be in "
                                          "[0, num_blocks = {})",
                                          b, j, blk, g.num_blocks));
    }
  }
}

VisibleRange visible_range(const PagedMqaLogitsParams& p, std::int64_t row) {
  return paged_visible_range(p.context_lens_kind, p.context_lens.data(), row / p.next_n, row % p.next_n, p.next_n,
                             p.max_ctx);
}

std::vector<VisibleRange> visible_ranges(const PagedMqaLogitsParams& p) {
  validate(p);
  std::vector<VisibleRange> out(idx(p.rows()));
  for (std::int64_t r = 0; r < p.rows(); ++r) out[idx(r)] = visible_range(p, r);
  return out;
}

namespace gold {

void paged_mqa_logits(const PagedMqaLogitsParams& p) {
  const std::vector<VisibleRange> ranges = visible_ranges(p);
  const auto& c = p.cache;
  const int P = c.geo.page_tokens;
  detail::gold_logits(problem(p, ranges), [&](std::int64_t b, std::int64_t t, float* k) {
    const std::int64_t block = p.block_table[idx(b * p.max_blocks + t / P)];
    for (int d = 0; d < c.geo.head_dim; ++d) k[d] = fp8_to_f32(read_index_k_code(c, block, t % P, d), c.geo.fp8);
    return read_index_k_scale(c, block, t % P);
  });
}

}  // namespace gold

namespace fast {

void paged_mqa_logits(const PagedMqaLogitsParams& p) {
  const std::vector<VisibleRange> ranges = visible_ranges(p);
  const auto& g = p.cache.geo;
  const auto& table = detail::fp8_table(g.fp8);
  const std::uint8_t* base = p.cache.bytes.data();
  detail::fast_logits(problem(p, ranges), [&](std::int64_t b, std::int64_t t, float* k) {
    const std::int64_t block = p.block_table[idx(b * p.max_blocks + t / g.page_tokens)];
    const std::int64_t tt = t % g.page_tokens;
    const std::uint8_t* page = base + block * g.block_stride_bytes;
    // Both layouts keep dims [d0, d0 + 16) of a token in 16 consecutive bytes (d0 a multiple of 16).
    for (int d0 = 0; d0 < g.head_dim; d0 += 16) {
      const std::uint8_t* src = page + layout::IndexK::value_offset(g.layout, g.head_dim, tt, d0);
      for (int j = 0; j < std::min(16, g.head_dim - d0); ++j) k[d0 + j] = table[src[j]];
    }
    return load_f32(page + layout::IndexK::scale_offset(g.page_tokens, g.head_dim, tt));
  });
}

}  // namespace fast
}  // namespace dsa
