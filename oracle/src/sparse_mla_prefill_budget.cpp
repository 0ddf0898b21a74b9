// sparse_mla_prefill (SPEC §5): gold, per-element budgets (BUDGETS.md §2) and the judge. Row s of
// S_q selects slots of `kv` physically; slot j is valid iff 0 ≤ idx < S_kv and j < topk_length[s].
#include <fmt/format.h>

#include "dsa/judge.hpp"
#include "dsa/mla_slots.hpp"
#include "sparse_mla_budget_rows.hpp"

namespace dsa {

SparseMlaBudget sparse_mla_prefill_budget(const SparseMlaPrefillParams& p, const KernelPrecision& k,
                                          const AttentionClaims& claims) {
  validate(p);
  SparseMlaBudget b;
  b.gold = sparse_mla_prefill_gold(p);
  detail::AttentionBudgetProblem a;
  a.T = p.S_q;
  a.H = p.H;
  a.D_qk = p.kv.geo.dim_qk();
  a.D_v = p.kv.geo.dim_v();
  a.q = p.q.data();
  a.sink = p.attn_sink.empty() ? nullptr : p.attn_sink.data();
  a.sm_scale = effective_sm_scale(p.sm_scale, a.D_qk);
  a.conv = p.conventions;
  a.gather = [&](std::int64_t r, std::vector<float>& token, std::vector<double>& kv) {
    const std::int32_t eligible = eligible_slots(p.topk, p.topk_length.empty() ? nullptr : p.topk_length.data(), r);
    for (std::int32_t j = 0; j < eligible; ++j) {
      const MlaTokenRef ref = resolve_physical(p.indices[static_cast<std::size_t>(r * p.topk + j)],
                                               p.kv.geo.num_blocks, p.kv.geo.page_tokens);
      if (!ref.valid()) continue;
      read_mla_token(p.kv, ref.block, ref.t, p.reader, token.data());
      kv.insert(kv.end(), token.begin(), token.end());
    }
  };
  detail::attention_budget(a, k, claims, b);
  return b;
}

CaseResult judge_sparse_mla_prefill(const SparseMlaPrefillParams& p, const SparseMlaKernelOutputs& got,
                                    const JudgeOptions& options) {
  const SparseMlaBudget b = sparse_mla_prefill_budget(p, options.precision, options.claims);
  CaseResult r = detail::judge_attention(b, got, options, {"s", "h"}, {p.S_q, p.H});
  r.op = to_string(Op::sparse_mla_prefill);
  r.layout = to_string(p.kv.geo.layout);
  r.shape = fmt::format("S_q={} H={} S_kv={} topk={}", p.S_q, p.H, p.kv.geo.capacity_tokens(), p.topk);
  return r;
}

}  // namespace dsa
