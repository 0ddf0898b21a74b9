// paged_mqa_logits (SPEC §6.2): fp64 gold logits, per-position budgets (BUDGETS.md §3) and the
// judge under a write contract. Row b·N + i reads key t of sequence b through block_table[b].
#include <fmt/format.h>

#include "dsa/judge.hpp"
#include "logits_budget_rows.hpp"

namespace dsa {

namespace {

// The params with an output buffer of their own, so that the reference's validation (which checks
// the logits buffer too) can run on params whose `logits` a judge does not use.
void validate_inputs(const PagedMqaLogitsParams& p) {
  PagedMqaLogitsParams v = p;
  std::vector<float> scratch;
  if (p.rows() > 0 && p.max_ctx > 0 && p.rows() <= (std::int64_t{1} << 40) / p.max_ctx)
    scratch.resize(static_cast<std::size_t>(p.rows() * p.max_ctx));
  v.logits = scratch;
  v.logits_row_stride = p.max_ctx;
  validate(v);
}

}  // namespace

LogitsBudget paged_mqa_logits_budget(const PagedMqaLogitsParams& p, const KernelPrecision& k) {
  validate_inputs(p);
  LogitsBudget b;
  b.ranges.resize(static_cast<std::size_t>(p.rows()));
  for (std::int64_t r = 0; r < p.rows(); ++r) b.ranges[static_cast<std::size_t>(r)] = visible_range(p, r);
  detail::LogitsBudgetProblem lp;
  lp.rows = p.rows();
  lp.heads = p.num_heads;
  lp.dim = p.head_dim;
  lp.width = p.max_ctx;
  lp.q = p.q.data();
  lp.q_fp8 = p.q_fp8;
  lp.weights = p.weights.data();
  lp.k_scale_at = p.k_scale_at;
  const auto& c = p.cache;
  const std::int32_t P = c.geo.page_tokens;
  lp.read_token = [&](std::int64_t r, std::int64_t t, float* kv) {
    const std::int64_t b_seq = r / p.next_n;
    const std::int64_t block = p.block_table[static_cast<std::size_t>(b_seq * p.max_blocks + t / P)];
    for (int d = 0; d < c.geo.head_dim; ++d) kv[d] = fp8_to_f32(read_index_k_code(c, block, t % P, d), c.geo.fp8);
    return read_index_k_scale(c, block, t % P);
  };
  detail::logits_budget(lp, k, b);
  return b;
}

CaseResult judge_paged_mqa_logits(const PagedMqaLogitsParams& p, std::span<const float> logits,
                                  std::int64_t row_stride, const JudgeOptions& options) {
  const LogitsBudget b = paged_mqa_logits_budget(p, options.precision);
  const std::int64_t page = options.contract_page_tokens > 0 ? options.contract_page_tokens : p.cache.geo.page_tokens;
  CaseResult r = detail::judge_logits(b, logits, row_stride, options, page, {"b", "n"}, {p.batch, p.next_n});
  r.op = to_string(Op::paged_mqa_logits);
  r.layout = to_string(p.cache.geo.layout);
  r.shape = fmt::format("B={} N={} H={} D={} P={} max_ctx={} {} {}", p.batch, p.next_n, p.num_heads, p.head_dim,
                        p.cache.geo.page_tokens, p.max_ctx, to_string(p.context_lens_kind), to_string(p.k_scale_at));
  return r;
}

}  // namespace dsa
