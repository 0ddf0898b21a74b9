// mqa_logits (SPEC §6.3): fp64 gold logits, per-position budgets (BUDGETS.md §3) and the judge
// under a write contract. Row i sees keys t ∈ [ks[i], ke[i]).
#include <fmt/format.h>

#include "dsa/judge.hpp"
#include "logits_budget_rows.hpp"

namespace dsa {

namespace {

void validate_inputs(const MqaLogitsParams& p) {
  MqaLogitsParams v = p;
  std::vector<float> scratch;
  if (p.seq_len > 0 && p.seq_len_kv > 0 && p.seq_len <= (std::int64_t{1} << 40) / p.seq_len_kv)
    scratch.resize(static_cast<std::size_t>(p.seq_len * p.seq_len_kv));
  v.logits = scratch;
  v.logits_row_stride = p.seq_len_kv;
  validate(v);
}

}  // namespace

LogitsBudget mqa_logits_budget(const MqaLogitsParams& p, const KernelPrecision& k) {
  validate_inputs(p);
  LogitsBudget b;
  b.ranges.resize(static_cast<std::size_t>(p.seq_len));
  for (std::int64_t r = 0; r < p.seq_len; ++r) b.ranges[static_cast<std::size_t>(r)] = visible_range(p, r);
  detail::LogitsBudgetProblem lp;
  lp.rows = p.seq_len;
  lp.heads = p.num_heads;
  lp.dim = p.head_dim;
  lp.width = p.seq_len_kv;
  lp.q = p.q.data();
  lp.q_fp8 = p.q_fp8;
  lp.weights = p.weights.data();
  lp.k_scale_at = p.k_scale_at;
  lp.read_token = [&](std::int64_t, std::int64_t t, float* kv) {
    for (std::int64_t d = 0; d < p.head_dim; ++d)
      kv[d] = fp8_to_f32(p.k[static_cast<std::size_t>(t * p.head_dim + d)], p.k_fp8);
    return p.k_scales[static_cast<std::size_t>(t)];
  };
  detail::logits_budget(lp, k, b);
  return b;
}

CaseResult judge_mqa_logits(const MqaLogitsParams& p, std::span<const float> logits, std::int64_t row_stride,
                            const JudgeOptions& options) {
  const LogitsBudget b = mqa_logits_budget(p, options.precision);
  const std::int64_t page = options.contract_page_tokens > 0 ? options.contract_page_tokens : 64;
  CaseResult r = detail::judge_logits(b, logits, row_stride, options, page, {"s"}, {p.seq_len});
  r.op = to_string(Op::mqa_logits);
  r.layout = "dense";
  r.shape = fmt::format("S={} S_kv={} H={} D={} {}", p.seq_len, p.seq_len_kv, p.num_heads, p.head_dim,
                        to_string(p.k_scale_at));
  return r;
}

}  // namespace dsa
