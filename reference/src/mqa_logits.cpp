// mqa_logits (SPEC §6.3): validation and the gold and fast paths over a contiguous K.
#include "dsa/mqa_logits.hpp"

#include <fmt/format.h>

#include "dsa/error.hpp"
#include "indexer_validation.hpp"
#include "mqa_logits_engine.hpp"

namespace dsa {

namespace {

std::size_t idx(std::int64_t i) { return static_cast<std::size_t>(i); }

// Consecutive query rows that share one K tile in the fast path: about 256 GEMM columns.
std::int64_t group_rows(std::int64_t heads) { return std::max<std::int64_t>(1, 256 / heads); }

detail::LogitsProblem problem(const MqaLogitsParams& p, const std::vector<VisibleRange>& ranges) {
  detail::LogitsProblem lp;
  lp.rows = p.seq_len;
  lp.heads = p.num_heads;
  lp.dim = p.head_dim;
  lp.q = p.q.data();
  lp.q_fp8 = p.q_fp8;
  lp.weights = p.weights.data();
  lp.ranges = ranges.data();
  lp.group_rows = group_rows(p.num_heads);
  lp.k_scale_at = p.k_scale_at;
  lp.max_ctx = p.seq_len_kv;
  lp.logits = p.logits.data();
  lp.row_stride = p.logits_row_stride;
  return lp;
}

}  // namespace

void validate(const MqaLogitsParams& p) {
  if (p.seq_len < 0) throw InvalidArgument("seq_len", fmt::format("must be ≥ 0 (got {})", p.seq_len));
  if (p.seq_len_kv < 0) throw InvalidArgument("seq_len_kv", fmt::format("must be ≥ 0 (got {})", p.seq_len_kv));
  if (p.num_heads < 1) throw InvalidArgument("num_heads", fmt::format("must be ≥ 1 (got {})", p.num_heads));
  if (p.head_dim < 1) throw InvalidArgument("head_dim", fmt::format("must be ≥ 1 (got {})", p.head_dim));
  detail::require_elements(p.q.size(), {p.seq_len, p.num_heads, p.head_dim}, "q", "S·H·D");
  detail::require_elements(p.k.size(), {p.seq_len_kv, p.head_dim}, "k", "S_kv·D");
  detail::require_elements(p.k_scales.size(), {p.seq_len_kv}, "k_scales", "S_kv");
  detail::require_elements(p.weights.size(), {p.seq_len, p.num_heads}, "weights", "S·H");
  detail::require_elements(p.ks.size(), {p.seq_len}, "ks", "S");
  detail::require_elements(p.ke.size(), {p.seq_len}, "ke", "S");
  if (p.logits_row_stride < p.seq_len_kv)
    throw InvalidArgument("logits_row_stride",
                          fmt::format("must be ≥ seq_len_kv = {} (got {})", p.seq_len_kv, p.logits_row_stride));
  detail::require_rows(p.logits.size(), p.seq_len, p.logits_row_stride, p.seq_len_kv, "logits", "(S−1)·row_stride + S_kv");
  for (std::int64_t i = 0; i < p.seq_len; ++i) {
    const std::int32_t ks = p.ks[idx(i)], ke = p.ke[idx(i)];
    if (ks < 0 || ks > ke || ke > p.seq_len_kv)
      throw InvalidArgument(ks < 0 || ks > ke ? "ks" : "ke",
                            fmt::format("row {} has [ks, ke) = [{}, {}): must satisfy 0 ≤ ks ≤ ke ≤ seq_len_kv = {}",
                                        i, ks, ke, p.seq_len_kv));
  }
}

VisibleRange visible_range(const MqaLogitsParams& p, std::int64_t row) {
  return ranged_visible_range(p.ks[idx(row)], p.ke[idx(row)], p.seq_len_kv);
}

std::vector<VisibleRange> visible_ranges(const MqaLogitsParams& p) {
  validate(p);
  std::vector<VisibleRange> out(idx(p.seq_len));
  for (std::int64_t r = 0; r < p.seq_len; ++r) out[idx(r)] = visible_range(p, r);
  return out;
}

namespace gold {

void mqa_logits(const MqaLogitsParams& p) {
  const std::vector<VisibleRange> ranges = visible_ranges(p);
  detail::gold_logits(problem(p, ranges), [&](std::int64_t, std::int64_t t, float* k) {
    for (std::int64_t d = 0; d < p.head_dim; ++d) k[d] = fp8_to_f32(p.k[idx(t * p.head_dim + d)], p.k_fp8);
    return p.k_scales[idx(t)];
  });
}

}  // namespace gold

namespace fast {

void mqa_logits(const MqaLogitsParams& p) {
  const std::vector<VisibleRange> ranges = visible_ranges(p);
  const auto& table = detail::fp8_table(p.k_fp8);
  detail::fast_logits(problem(p, ranges), [&](std::int64_t, std::int64_t t, float* k) {
    const std::uint8_t* src = p.k.data() + t * p.head_dim;
    for (std::int64_t d = 0; d < p.head_dim; ++d) k[d] = table[src[d]];
    return p.k_scales[idx(t)];
  });
}

}  // namespace fast
}  // namespace dsa
