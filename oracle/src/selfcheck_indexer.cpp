// Self-checks of the CPU indexer: paged_mqa_logits and mqa_logits fast paths against the fp64
// gold under the budgets of BUDGETS.md §3 (fp32 round-to-nearest accumulation, fp32 logits), and
// topk_indices under the acceptance predicate of SPEC §6.4 (exact).
#include <fmt/format.h>

#include "dsa/judge.hpp"
#include "dsa/op_cases.hpp"
#include "dsa/selfcheck.hpp"

namespace dsa {

namespace {

JudgeOptions cpu_judging(Op op) {
  JudgeOptions j;
  j.precision = kernel_precision("fp32p-rn", op);
  j.sentinel_f32 = kSentinelF32;
  return j;
}

CaseResult paged_check(const std::string& layout, std::uint64_t seed) {
  RandomCaseSpec spec;
  spec.seed = seed;
  spec.layout = layout;
  const PagedMqaLogitsCase c = random_paged_mqa_logits_case(spec);
  // Rows of the kernel's buffer are wider than max_ctx (DeepGEMM aligns the stride); the tail
  // must stay untouched, which the sentinel there shows.
  const std::int64_t stride = c.max_ctx + static_cast<std::int64_t>(seed % 3) * 8;
  std::vector<float> logits(static_cast<std::size_t>(c.rows() * stride), f32_from_bits(kSentinelF32));
  fast::paged_mqa_logits(c.params(logits, stride));
  CaseResult r = judge_paged_mqa_logits(c.params(), logits, stride, cpu_judging(Op::paged_mqa_logits));
  std::int64_t touched = 0;
  for (std::int64_t row = 0; row < c.rows(); ++row)
    for (std::int64_t t = c.max_ctx; t < stride; ++t)
      touched += f32_bits(logits[static_cast<std::size_t>(row * stride + t)]) != kSentinelF32;
  if (touched) r.error = fmt::format("{} elements of the row tails [max_ctx, row_stride) were written", touched);
  r.shape += fmt::format(" q={} k={}", to_string(c.q_fp8), to_string(c.cache.geo.fp8));
  return r;
}

CaseResult mqa_check(std::uint64_t seed) {
  RandomCaseSpec spec;
  spec.seed = seed;
  const MqaLogitsCase c = random_mqa_logits_case(spec);
  std::vector<float> logits(static_cast<std::size_t>(c.seq_len * c.seq_len_kv), f32_from_bits(kSentinelF32));
  fast::mqa_logits(c.params(logits, c.seq_len_kv));
  CaseResult r = judge_mqa_logits(c.params(), logits, c.seq_len_kv, cpu_judging(Op::mqa_logits));
  r.shape += fmt::format(" q={} k={}", to_string(c.q_fp8), to_string(c.k_fp8));
  return r;
}

CaseResult topk_check(std::uint64_t seed) {
  RandomCaseSpec spec;
  spec.seed = seed;
  const TopkCase c = random_topk_case(spec);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(c.rows * c.k), -7);
  topk_indices(c.logits, c.rows, c.width, c.ranges, c.k, idx);
  JudgeOptions j;
  j.topk_stable_order = true;  // the reference claims (logit desc, position asc)
  return judge_topk(c.logits, c.rows, c.width, c.ranges, c.k, idx, j);
}

}  // namespace

void add_indexer_checks(std::vector<SelfCheck>& checks) {
  for (const char* layout : {"standard", "preshuffle"})
    checks.push_back({"paged_mqa_logits", "fast", layout, "fp32p-rn",
                      [l = std::string(layout)](std::uint64_t seed) { return paged_check(l, seed); }});
  checks.push_back({"mqa_logits", "fast", "dense", "fp32p-rn", [](std::uint64_t seed) { return mqa_check(seed); }});
  checks.push_back({"topk", "topk_indices", "dense", "exact", [](std::uint64_t seed) { return topk_check(seed); }});
}

}  // namespace dsa
