// Self-checks of the CPU sparse MLA fast paths (fused, staged, split-KV) against the fp64 gold on
// fresh random cases, judged by the budgets of BUDGETS.md §2 at the precision a CPU promises
// (fp32p-rn: round-to-nearest fp32 accumulation, P kept in fp32) and with the tile width and split
// count the fast path really uses. This is the audit of BUDGETS.md §4: a correct fast path must
// stay at ratio ≤ 1.
#include <fmt/format.h>

#include <random>

#include "dsa/judge.hpp"
#include "dsa/op_cases.hpp"
#include "dsa/selfcheck.hpp"

namespace dsa {

namespace {

struct FastOutputs {
  std::vector<std::uint16_t> out;
  std::vector<float> lse, max_logits;
  FastOutputs(std::int64_t rows, std::int32_t H, int D_v)
      : out(static_cast<std::size_t>(rows * H * D_v), kSentinelBf16),
        lse(static_cast<std::size_t>(rows * H), f32_from_bits(kSentinelF32)),
        max_logits(static_cast<std::size_t>(rows * H), f32_from_bits(kSentinelF32)) {}
  SparseMlaOutputs span() { return {out, lse, max_logits}; }
  SparseMlaKernelOutputs view() const { return {out, lse, max_logits}; }
};

// What the variant named by `variant` runs with, drawn from the seed.
SparseMlaFastOptions fast_options(const std::string& variant, std::mt19937_64& rng) {
  SparseMlaFastOptions o;
  o.algo = variant == "fast.staged" ? MlaFastAlgo::staged : MlaFastAlgo::fused;
  o.num_splits = variant == "fast.split" ? static_cast<int>(2 + rng() % 15) : 1;  // split: 2..16
  return o;
}

JudgeOptions cpu_judging(Op op, int num_splits) {
  JudgeOptions j;
  j.precision = kernel_precision("fp32p-rn", op);
  j.claims = {num_splits, kMlaTileSlots};
  j.sentinel_bf16 = kSentinelBf16;
  j.sentinel_f32 = kSentinelF32;
  return j;
}

std::string describe(const ReaderModel& r, const MlaConventions& c) {
  return fmt::format("reader={}/{}/{} lse_empty={} sink_in_lse={} base={}", to_string(r.scale), to_string(r.product),
                     to_string(r.operand), c.lse_empty == LseEmpty::pos_inf ? "+inf" : "-inf", c.sink_in_lse,
                     c.lse_base == LseBase::e ? "e" : "2");
}

CaseResult decode_check(const std::string& variant, const std::string& layout, std::uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0xDEC0DEull);
  RandomCaseSpec spec;
  spec.seed = seed;
  spec.layout = layout == "BF16" ? (rng() % 2 ? "BF16" : "BF16-512") : layout;
  // The staged workspace is bf16: it is the reader model with bf16 operands, so the exact-fp32
  // reader is not one it implements.
  if (variant == "fast.staged") spec.reader = rng() % 3 == 0 ? "flashmla_sm90" : rng() % 2 ? "flashmla_sm100" : "staged_bf16";
  const SparseMlaDecodeCase c = random_sparse_mla_decode_case(spec);
  const SparseMlaDecodeParams p = c.params();
  const SparseMlaFastOptions fo = fast_options(variant, rng);
  FastOutputs got(c.T(), c.H, c.cache.geo.dim_v());
  sparse_mla_decode_fast(p, got.span(), fo);
  CaseResult r = judge_sparse_mla_decode(p, got.view(), cpu_judging(Op::sparse_mla_decode, fo.num_splits));
  r.shape += fmt::format(" splits={} sink={} {}", fo.num_splits, c.sink.empty() ? "none" : "yes",
                         describe(c.reader, c.conventions));
  return r;
}

CaseResult prefill_check(const std::string& variant, const std::string& layout, std::uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9EF111ull);
  RandomCaseSpec spec;
  spec.seed = seed;
  spec.layout = layout == "BF16" ? (rng() % 2 ? "BF16" : "BF16-512") : layout;
  const SparseMlaPrefillCase c = random_sparse_mla_prefill_case(spec);
  const SparseMlaPrefillParams p = c.params();
  const SparseMlaFastOptions fo = fast_options(variant, rng);
  FastOutputs got(c.S_q, c.H, c.kv.geo.dim_v());
  sparse_mla_prefill_fast(p, got.span(), fo);
  CaseResult r = judge_sparse_mla_prefill(p, got.view(), cpu_judging(Op::sparse_mla_prefill, fo.num_splits));
  r.shape += fmt::format(" splits={} sink={} {}", fo.num_splits, c.sink.empty() ? "none" : "yes",
                         describe(c.reader, c.conventions));
  return r;
}

}  // namespace

void add_sparse_mla_checks(std::vector<SelfCheck>& checks) {
  for (const char* variant : {"fast.fused", "fast.staged", "fast.split"})
    for (const char* layout : {"V32", "MODEL1", "MODEL1_SPLIT", "BF16"})
      checks.push_back({"sparse_mla_decode", variant, layout, "fp32p-rn",
                        [v = std::string(variant), l = std::string(layout)](std::uint64_t seed) {
                          return decode_check(v, l, seed);
                        }});
  for (const char* variant : {"fast.fused", "fast.split"})
    for (const char* layout : {"BF16", "V32", "MODEL1"})
      checks.push_back({"sparse_mla_prefill", variant, layout, "fp32p-rn",
                        [v = std::string(variant), l = std::string(layout)](std::uint64_t seed) {
                          return prefill_check(v, l, seed);
                        }});
}

}  // namespace dsa
