// The per-op judges (oracle/include/dsa/judge.hpp): the project's correct fast paths stay under
// budget on a sweep; one output element moved just past its budget fails alone and is named; the
// exact rules (NaN, unwritten sentinel, moved −inf, empty rows, sink +inf, write contracts, top-k
// predicate) fail with the right rule; an untouched case passes.
#include "dsa/judge.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>

#include "dsa/formats.hpp"
#include "dsa/op_cases.hpp"
#include "dsa/selfcheck.hpp"

namespace {

using namespace dsa;

constexpr float kInfF = std::numeric_limits<float>::infinity();

// The next finite bf16 code up / down (by the ordering of values; ±0 step to the smallest subnormal).
std::uint16_t bf16_up(std::uint16_t c) {
  if ((c & 0x7FFF) == 0) return 0x0001;
  return (c & 0x8000) ? static_cast<std::uint16_t>(c - 1) : static_cast<std::uint16_t>(c + 1);
}
std::uint16_t bf16_down(std::uint16_t c) {
  if ((c & 0x7FFF) == 0) return 0x8001;
  return (c & 0x8000) ? static_cast<std::uint16_t>(c + 1) : static_cast<std::uint16_t>(c - 1);
}
// The smallest bf16 strictly above x (x finite).
std::uint16_t bf16_above(double x) {
  std::uint16_t c = f64_to_bf16(x);
  while (static_cast<double>(bf16_to_f32(c)) <= x) c = bf16_up(c);
  return c;
}
// The largest bf16 at or below x.
std::uint16_t bf16_at_or_below(double x) {
  std::uint16_t c = f64_to_bf16(x);
  while (static_cast<double>(bf16_to_f32(c)) > x) c = bf16_down(c);
  return c;
}
float f32_above(double x) {
  float f = static_cast<float>(x);
  while (static_cast<double>(f) <= x) f = std::nextafter(f, kInfF);
  return f;
}
float f32_at_or_below(double x) {
  float f = static_cast<float>(x);
  while (static_cast<double>(f) > x) f = std::nextafter(f, -kInfF);
  return f;
}

const CaseResult::Output& output(const CaseResult& r, const std::string& name) {
  for (const auto& o : r.outputs)
    if (o.name == name) return o;
  throw std::runtime_error("no output " + name);
}

JudgeOptions options_for(Op op) {
  JudgeOptions o;
  o.precision = kernel_precision("bf16p", op);
  o.sentinel_bf16 = kSentinelBf16;
  o.sentinel_f32 = kSentinelF32;
  return o;
}

// A decode case's gold outputs rounded like a kernel's, and its budget.
struct DecodeFixture {
  SparseMlaDecodeCase c;
  SparseMlaBudget budget;
  std::vector<std::uint16_t> out;
  std::vector<float> lse, max_logits;
  explicit DecodeFixture(const RandomCaseSpec& s, const JudgeOptions& o = options_for(Op::sparse_mla_decode))
      : c(random_sparse_mla_decode_case(s)), budget(sparse_mla_decode_budget(c.params(), o.precision, o.claims)) {
    out.resize(budget.gold.out.size());
    lse.resize(budget.gold.lse.size());
    max_logits.resize(budget.gold.max_logits.size());
    round_gold_outputs(budget.gold, {out, lse, max_logits});
  }
  // After editing the case's inputs: gold, budget and outputs again.
  void recompute(const JudgeOptions& o = options_for(Op::sparse_mla_decode)) {
    budget = sparse_mla_decode_budget(c.params(), o.precision, o.claims);
    round_gold_outputs(budget.gold, {out, lse, max_logits});
  }
  CaseResult judge(const JudgeOptions& o = options_for(Op::sparse_mla_decode)) const {
    return judge_sparse_mla_decode(c.params(), {out, lse, max_logits}, o);
  }
  // The coordinate compare() prints for flat out index i.
  std::string out_coordinate(std::size_t i) const {
    return TensorShape{{"b", "s", "h", "d"}, {c.B, c.S_q, c.H, budget.gold.D_v}}.coordinate(static_cast<std::int64_t>(i));
  }
  std::string row_coordinate(std::size_t i) const {
    return TensorShape{{"b", "s", "h"}, {c.B, c.S_q, c.H}}.coordinate(static_cast<std::int64_t>(i));
  }
};

RandomCaseSpec decode_spec(std::uint64_t seed) {
  RandomCaseSpec s;
  s.seed = seed;
  s.B = 2;
  s.S_q = 1;
  s.H = 4;
  s.topk = 64;
  s.sink = "none";
  s.lengths = false;
  return s;
}

// ---- sweep ---------------------------------------------------------------------------------------

TEST(JudgeSweep, EveryCorrectFastPathStaysUnderBudget) {
  SelfCheckOptions o;
  o.cases_per_check = 4;
  o.seed = 20251121;
  const auto results = run_selfchecks(o, nullptr);
  ASSERT_FALSE(results.empty());
  double worst = 0.0;
  std::map<std::string, double> per_group;
  for (const auto& r : results) {
    EXPECT_TRUE(r.pass()) << r.op << "/" << r.variant << "/" << r.layout << " seed " << r.seed << ": "
                          << (r.error.empty() ? "" : r.error) << [&] {
                               std::string s;
                               for (const auto& out : r.outputs) s += " " + out.name + ": " + out.cmp.failure;
                               return s;
                             }();
    const std::string key = r.op + "/" + r.variant + "/" + r.layout;
    per_group[key] = std::max(per_group[key], r.worst_ratio());
    worst = std::max(worst, r.worst_ratio());
  }
  for (const auto& [k, v] : per_group) RecordProperty(k, std::to_string(v));
  RecordProperty("worst_ratio", std::to_string(worst));
  std::printf("worst error/budget over the sweep: %.4f\n", worst);
  EXPECT_LE(worst, 1.0);
  // Not vacuous: bf16 outputs use a visible part of their budget.
  EXPECT_GT(per_group["sparse_mla_decode/fast.fused/V32"], 1.0 / 16);
}

// ---- the lse-convention core (BUDGETS.md eq. 2.9) against an fp32 evaluation --------------------

TEST(LseConventionBudget, Fp32SinkFoldAndBase2StayUnderBudget) {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> lse_d(-30.0, 60.0), sink_d(-40.0, 70.0), err_d(-1.0, 1.0);
  const KernelPrecision k = kernel_precision("fp32p-rn", Op::sparse_mla_decode);
  double worst = 0.0;
  for (int trial = 0; trial < 20000; ++trial) {
    const double L = lse_d(rng), sink = static_cast<float>(sink_d(rng));
    const double b_nat = 1e-6 * (1.0 + std::fabs(L));
    // The kernel's natural lse is off by up to its budget; it folds the sink in fp32 and converts.
    const float Lk = static_cast<float>(L + err_d(rng) * b_nat);
    const float s = static_cast<float>(sink);
    const float m = std::max(Lk, s);
    const float folded = m + std::log(std::exp(Lk - m) + std::exp(s - m));
    const float base2 = folded * static_cast<float>(1.0 / std::log(2.0));
    const double exact = std::max(L, sink) + std::log(std::exp(L - std::max(L, sink)) + std::exp(sink - std::max(L, sink)));
    const double b_fold = lse_convention_budget(b_nat, L, sink, true, false, k);
    const double b_2 = lse_convention_budget(b_nat, L, sink, true, true, k);
    worst = std::max(worst, std::fabs(folded - exact) / b_fold);
    worst = std::max(worst, std::fabs(base2 - exact / std::log(2.0)) / b_2);
    ASSERT_LE(std::fabs(folded - exact), b_fold) << "L=" << L << " sink=" << sink;
    ASSERT_LE(std::fabs(base2 - exact / std::log(2.0)), b_2) << "L=" << L << " sink=" << sink;
  }
  RecordProperty("worst_ratio", std::to_string(worst));
  EXPECT_GT(worst, 1.0 / 64);  // not vacuous
  // An empty row folds to the sink exactly; only the base-2 product rounds.
  EXPECT_EQ(lse_convention_budget(0.0, -std::numeric_limits<double>::infinity(), 2.5, true, false, k), 0.0);
  EXPECT_GT(lse_convention_budget(0.0, -std::numeric_limits<double>::infinity(), 2.5, true, true, k), 0.0);
}

// ---- sparse MLA: one element past its budget ----------------------------------------------------

TEST(SparseMlaJudge, UntouchedGoldOutputsPass) {
  const DecodeFixture f(decode_spec(1));
  const CaseResult r = f.judge();
  EXPECT_TRUE(r.pass());
  ASSERT_EQ(r.outputs.size(), 3u);
  for (const auto& o : r.outputs) EXPECT_EQ(o.cmp.failures, 0) << o.name;
}

TEST(SparseMlaJudge, OneOutElementJustPastItsBudgetFailsAloneAndIsNamed) {
  for (std::uint64_t seed : {2, 3, 4}) {
    DecodeFixture f(decode_spec(seed));
    // An element with a finite gold value and a nonzero budget, away from the edges.
    std::size_t i = f.out.size() / 2 + seed * 37;
    while (!(f.budget.out[i] > 0.0)) ++i;
    const double want = f.budget.gold.out[i], b = f.budget.out[i];
    f.out[i] = bf16_above(want + 1.01 * b);  // away from gold, the nearest bf16 past 1.01 × budget
    CaseResult r = f.judge();
    const auto& o = output(r, "out");
    EXPECT_FALSE(o.cmp.pass);
    EXPECT_EQ(o.cmp.failures, 1);
    EXPECT_EQ(o.cmp.worst_coordinate, f.out_coordinate(i));
    EXPECT_NE(o.cmp.failure.find(f.out_coordinate(i)), std::string::npos) << o.cmp.failure;
    EXPECT_NE(o.cmp.failure.find("exceeds budget"), std::string::npos) << o.cmp.failure;
    EXPECT_GT(o.cmp.worst_ratio, 1.01);
    EXPECT_TRUE(output(r, "lse").cmp.pass);
    // The same element just inside its budget passes.
    f.out[i] = bf16_at_or_below(want + 0.99 * b);
    EXPECT_TRUE(f.judge().pass());
    // And below gold.
    f.out[i] = bf16_at_or_below(want - 1.01 * b);
    r = f.judge();
    EXPECT_EQ(output(r, "out").cmp.failures, 1);
    EXPECT_EQ(output(r, "out").cmp.worst_coordinate, f.out_coordinate(i));
  }
}

TEST(SparseMlaJudge, OneLseElementJustPastItsBudgetFailsAloneAndIsNamed) {
  DecodeFixture f(decode_spec(5));
  const std::size_t i = f.lse.size() - 2;
  ASSERT_TRUE(std::isfinite(f.budget.gold.lse[i]));
  ASSERT_GT(f.budget.lse[i], 0.0);
  f.lse[i] = f32_above(f.budget.gold.lse[i] + 1.01 * f.budget.lse[i]);
  const CaseResult r = f.judge();
  const auto& o = output(r, "lse");
  EXPECT_EQ(o.cmp.failures, 1);
  EXPECT_EQ(o.cmp.worst_coordinate, f.row_coordinate(i));
  EXPECT_GT(o.cmp.worst_ratio, 1.0);
  EXPECT_LT(o.cmp.worst_ratio, 1.02);  // fp32 is fine enough to land just past the budget
  EXPECT_TRUE(output(r, "out").cmp.pass);
  f.lse[i] = f32_at_or_below(f.budget.gold.lse[i] + 0.99 * f.budget.lse[i]);
  EXPECT_TRUE(f.judge().pass());
}

TEST(SparseMlaJudge, PrefillMaxLogitsJustPastItsBudgetFails) {
  RandomCaseSpec s;
  s.seed = 6;
  s.S_q = 3;
  s.H = 2;
  s.topk = 40;
  s.lengths = false;
  const SparseMlaPrefillCase c = random_sparse_mla_prefill_case(s);
  const JudgeOptions o = options_for(Op::sparse_mla_prefill);
  const SparseMlaBudget b = sparse_mla_prefill_budget(c.params(), o.precision, o.claims);
  std::vector<std::uint16_t> out(b.gold.out.size());
  std::vector<float> lse(b.gold.lse.size()), ml(b.gold.lse.size());
  round_gold_outputs(b.gold, {out, lse, ml});
  ASSERT_TRUE(judge_sparse_mla_prefill(c.params(), {out, lse, ml}, o).pass());
  std::size_t i = 0;
  while (!std::isfinite(b.gold.max_logits[i])) ++i;
  ml[i] = f32_at_or_below(b.gold.max_logits[i] - 1.01 * b.max_logits[i]);
  const CaseResult r = judge_sparse_mla_prefill(c.params(), {out, lse, ml}, o);
  EXPECT_EQ(output(r, "max_logits").cmp.failures, 1);
  EXPECT_EQ(output(r, "max_logits").cmp.worst_coordinate,
            TensorShape({{"s", "h"}, {c.S_q, c.H}}).coordinate(static_cast<std::int64_t>(i)));
}

// ---- sparse MLA: exact rules ----------------------------------------------------------------------

TEST(SparseMlaJudge, NaNInOutFailsAsNonFiniteMismatch) {
  DecodeFixture f(decode_spec(7));
  f.out[17] = 0x7FC0;  // bf16 quiet NaN
  const CaseResult r = f.judge();
  const auto& o = output(r, "out");
  EXPECT_EQ(o.cmp.failures, 1);
  EXPECT_EQ(o.cmp.nonfinite_mismatches, 1);
  EXPECT_NE(o.cmp.failure.find("non-finite mismatch"), std::string::npos) << o.cmp.failure;
  EXPECT_NE(o.cmp.failure.find(f.out_coordinate(17)), std::string::npos) << o.cmp.failure;
}

TEST(SparseMlaJudge, SentinelLeftInPlaceIsAnUnwrittenElement) {
  DecodeFixture f(decode_spec(8));
  f.out[5] = kSentinelBf16;
  f.lse[1] = f32_from_bits(kSentinelF32);
  const CaseResult r = f.judge();
  EXPECT_EQ(output(r, "out").cmp.unwritten, 1);
  EXPECT_NE(output(r, "out").cmp.failure.find("unwritten"), std::string::npos);
  EXPECT_NE(output(r, "out").cmp.failure.find(f.out_coordinate(5)), std::string::npos);
  EXPECT_EQ(output(r, "lse").cmp.unwritten, 1);
  EXPECT_NE(output(r, "lse").cmp.failure.find(f.row_coordinate(1)), std::string::npos);
  // Without a declared sentinel the same NaN is a plain non-finite mismatch.
  JudgeOptions o = options_for(Op::sparse_mla_decode);
  o.sentinel_bf16.reset();
  o.sentinel_f32.reset();
  const CaseResult r2 = f.judge(o);
  EXPECT_EQ(output(r2, "out").cmp.unwritten, 0);
  EXPECT_EQ(output(r2, "out").cmp.nonfinite_mismatches, 1);
}

TEST(SparseMlaJudge, EmptyRowIsExactAndLseEmptyConventionIsEnforced) {
  RandomCaseSpec s = decode_spec(9);
  s.conventions = "flashmla";  // lse_empty = +inf
  s.extra = false;
  DecodeFixture f(s);
  // Row 0 selects nothing: every index invalid.
  for (std::int32_t j = 0; j < f.c.topk; ++j) f.c.indices[static_cast<std::size_t>(j)] = -1;
  f.recompute();
  ASSERT_TRUE(f.judge().pass());
  ASSERT_EQ(f.budget.gold.lse[0], std::numeric_limits<double>::infinity());
  for (std::int32_t d = 0; d < f.budget.gold.D_v; ++d) ASSERT_EQ(f.budget.out[static_cast<std::size_t>(d)], 0.0);
  // out of an empty row must be exactly 0: the smallest nonzero bf16 fails.
  f.out[3] = 0x0001;
  CaseResult r = f.judge();
  EXPECT_EQ(output(r, "out").cmp.failures, 1);
  EXPECT_NE(output(r, "out").cmp.failure.find("budget 0.000e+00"), std::string::npos) << output(r, "out").cmp.failure;
  f.out[3] = 0;
  // −inf where the convention says +inf.
  f.lse[0] = -kInfF;
  r = f.judge();
  EXPECT_EQ(output(r, "lse").cmp.nonfinite_mismatches, 1);
  EXPECT_NE(output(r, "lse").cmp.failure.find(f.row_coordinate(0)), std::string::npos);
}

TEST(SparseMlaJudge, SinkPlusInfinityMeansExactlyZero) {
  RandomCaseSpec s = decode_spec(10);
  s.sink = "finite";
  DecodeFixture f(s);
  f.c.sink[1] = kInfF;  // head 1
  f.recompute();
  ASSERT_TRUE(f.judge().pass());
  const std::size_t i = (0 * f.c.H + 1) * static_cast<std::size_t>(f.budget.gold.D_v) + 7;  // b 0, h 1, d 7
  ASSERT_EQ(f.budget.gold.out[i], 0.0);
  ASSERT_EQ(f.budget.out[i], 0.0);
  f.out[i] = f32_to_bf16(1e-30f);
  const CaseResult r = f.judge();
  const auto& out = output(r, "out");
  EXPECT_EQ(out.cmp.failures, 1);
  EXPECT_EQ(out.cmp.worst_coordinate, f.out_coordinate(i));
}

TEST(SparseMlaJudge, UnknownClaimsChargeAtLeastTheClaimedBudget) {
  // Worst-case claims (any split, a rescale per key) never judge more strictly than a claim.
  JudgeOptions claimed = options_for(Op::sparse_mla_decode);
  claimed.claims = {1, 64};
  const JudgeOptions unknown = options_for(Op::sparse_mla_decode);
  const SparseMlaDecodeCase c = random_sparse_mla_decode_case(decode_spec(11));
  const auto a = sparse_mla_decode_budget(c.params(), claimed.precision, claimed.claims);
  const auto b = sparse_mla_decode_budget(c.params(), unknown.precision, unknown.claims);
  bool some_larger = false;
  for (std::size_t i = 0; i < a.out.size(); ++i) {
    ASSERT_GE(b.out[i], a.out[i]);
    some_larger = some_larger || b.out[i] > a.out[i];
  }
  for (std::size_t i = 0; i < a.lse.size(); ++i) ASSERT_GE(b.lse[i], a.lse[i]);
  EXPECT_TRUE(some_larger);
}

TEST(SparseMlaJudge, OutputsOfTheWrongSizeAreAnError) {
  const DecodeFixture f(decode_spec(12));
  std::vector<std::uint16_t> short_out(f.out.begin(), f.out.end() - 1);
  EXPECT_THROW(judge_sparse_mla_decode(f.c.params(), {short_out, f.lse, {}}, options_for(Op::sparse_mla_decode)),
               InvalidArgument);
}

// ---- logits ----------------------------------------------------------------------------------------

struct PagedFixture {
  PagedMqaLogitsCase c;
  LogitsBudget budget;
  std::vector<float> logits;  // [rows][max_ctx]: gold rounded to fp32
  explicit PagedFixture(std::uint64_t seed) : c(random_paged_mqa_logits_case([&] {
    RandomCaseSpec s;
    s.seed = seed;
    s.B = 2;
    s.next_n = 2;
    s.max_ctx = 90;
    s.context_lens = "per_row";
    return s;
  }())) {
    budget = paged_mqa_logits_budget(c.params(), kernel_precision("bf16p", Op::paged_mqa_logits));
    logits.resize(budget.gold.size());
    for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(budget.gold[i]);
  }
  CaseResult judge(const JudgeOptions& o = options_for(Op::paged_mqa_logits)) const {
    return judge_paged_mqa_logits(c.params(), logits, c.max_ctx, o);
  }
  std::string coordinate(std::size_t i) const {
    return TensorShape{{"b", "n", "t"}, {c.batch, c.next_n, c.max_ctx}}.coordinate(static_cast<std::int64_t>(i));
  }
  // The n-th visible position with a nonzero budget.
  std::size_t visible(int nth = 0) const {
    for (std::size_t i = 0; i < budget.gold.size(); ++i)
      if (std::isfinite(budget.gold[i]) && budget.budget[i] > 0.0 && nth-- == 0) return i;
    throw std::runtime_error("not enough visible positions");
  }
  std::size_t first_masked() const {
    for (std::size_t i = 0; i < budget.gold.size(); ++i)
      if (budget.gold[i] == -std::numeric_limits<double>::infinity()) return i;
    throw std::runtime_error("nothing masked");
  }
};

TEST(LogitsJudge, UntouchedAndFastLogitsPass) {
  const PagedFixture f(21);
  EXPECT_TRUE(f.judge().pass());
  std::vector<float> fast_logits(f.logits.size(), f32_from_bits(kSentinelF32));
  fast::paged_mqa_logits(f.c.params(fast_logits, f.c.max_ctx));
  const CaseResult r = judge_paged_mqa_logits(f.c.params(), fast_logits, f.c.max_ctx, options_for(Op::paged_mqa_logits));
  EXPECT_TRUE(r.pass()) << r.outputs[0].cmp.failure;
}

TEST(LogitsJudge, OneLogitJustPastItsBudgetFailsAloneAndIsNamed) {
  PagedFixture f(22);
  const std::size_t i = f.visible(3);
  ASSERT_GT(f.budget.budget[i], 0.0);
  const float keep = f.logits[i];
  f.logits[i] = f32_above(f.budget.gold[i] + 1.01 * f.budget.budget[i]);
  const CaseResult r = f.judge();
  const auto& o = output(r, "logits");
  EXPECT_EQ(o.cmp.failures, 1);
  EXPECT_EQ(o.cmp.worst_coordinate, f.coordinate(i));
  EXPECT_NE(o.cmp.failure.find(f.coordinate(i)), std::string::npos);
  EXPECT_GT(o.cmp.worst_ratio, 1.0);
  EXPECT_LT(o.cmp.worst_ratio, 1.02);
  f.logits[i] = f32_at_or_below(f.budget.gold[i] + 0.99 * f.budget.budget[i]);
  EXPECT_TRUE(f.judge().pass());
  f.logits[i] = keep;
}

TEST(LogitsJudge, MovedMinusInfinityFailsAsNonFiniteMismatch) {
  PagedFixture f(23);
  const std::size_t vis = f.visible(), masked = f.first_masked();
  f.logits[vis] = -kInfF;  // a visible logit masked
  auto r = f.judge();
  EXPECT_EQ(output(r, "logits").cmp.nonfinite_mismatches, 1);
  EXPECT_NE(output(r, "logits").cmp.failure.find(f.coordinate(vis)), std::string::npos);
  f.logits[vis] = static_cast<float>(f.budget.gold[vis]);
  f.logits[masked] = 0.0f;  // a masked position with a value
  r = f.judge();
  EXPECT_EQ(output(r, "logits").cmp.nonfinite_mismatches, 1);
  EXPECT_NE(output(r, "logits").cmp.failure.find(f.coordinate(masked)), std::string::npos);
}

TEST(LogitsJudge, WriteContractVisibleSkipsMaskedPositionsOnly) {
  PagedFixture f(24);
  const std::size_t masked = f.first_masked();
  f.logits[masked] = f32_from_bits(kSentinelF32);  // never written, as DeepGEMM may leave it
  JudgeOptions all = options_for(Op::paged_mqa_logits);
  EXPECT_EQ(output(f.judge(all), "logits").cmp.unwritten, 1);
  JudgeOptions visible = all;
  visible.write_contract = WriteContract::visible;
  EXPECT_TRUE(f.judge(visible).pass());
  // A visible position still counts under `visible`.
  f.logits[f.visible()] = f32_from_bits(kSentinelF32);
  EXPECT_EQ(output(f.judge(visible), "logits").cmp.unwritten, 1);
}

TEST(LogitsJudge, MqaLogitsPerturbedAndFastOnes) {
  RandomCaseSpec s;
  s.seed = 25;
  s.S_q = 4;
  s.S_kv = 150;
  const MqaLogitsCase c = random_mqa_logits_case(s);
  const LogitsBudget b = mqa_logits_budget(c.params(), kernel_precision("bf16p", Op::mqa_logits));
  std::vector<float> logits(b.gold.size(), f32_from_bits(kSentinelF32));
  fast::mqa_logits(c.params(logits, c.seq_len_kv));
  EXPECT_TRUE(judge_mqa_logits(c.params(), logits, c.seq_len_kv, options_for(Op::mqa_logits)).pass());
  std::size_t i = 0;
  while (!(b.budget[i] > 0.0)) ++i;
  logits[i] = f32_at_or_below(b.gold[i] - 1.01 * b.budget[i]);
  const CaseResult r = judge_mqa_logits(c.params(), logits, c.seq_len_kv, options_for(Op::mqa_logits));
  EXPECT_EQ(r.outputs[0].cmp.failures, 1);
  EXPECT_EQ(r.outputs[0].cmp.worst_coordinate,
            TensorShape({{"s", "t"}, {c.seq_len, c.seq_len_kv}}).coordinate(static_cast<std::int64_t>(i)));
}

// ---- top-k -----------------------------------------------------------------------------------------

TEST(TopkJudge, ReferenceSelectionPassesAndTamperingFailsWithTheRule) {
  // Row 0 sees positions [0, 6) with logits 5 4 3 2 1 0; k = 3 → {0, 1, 2}.
  const std::vector<float> logits = {5, 4, 3, 2, 1, 0};
  const std::vector<VisibleRange> ranges = {{0, 6}};
  const JudgeOptions o;
  auto judged = [&](std::vector<std::int32_t> idx) { return judge_topk(logits, 1, 6, ranges, 3, idx, o); };
  EXPECT_TRUE(judged({0, 1, 2}).pass());
  EXPECT_TRUE(judged({2, 0, 1}).pass());  // order is free unless claimed
  const CaseResult below = judged({0, 1, 3});
  EXPECT_FALSE(below.pass());
  EXPECT_NE(below.outputs[0].cmp.failure.find("below_kth_largest"), std::string::npos) << below.outputs[0].cmp.failure;
  EXPECT_NE(below.outputs[0].cmp.worst_coordinate.find("slot=2"), std::string::npos);
  const CaseResult dup = judged({0, 1, 1});
  EXPECT_NE(dup.outputs[0].cmp.failure.find("duplicate"), std::string::npos) << dup.outputs[0].cmp.failure;
  const CaseResult masked = judged({0, 1, 6});
  EXPECT_NE(masked.outputs[0].cmp.failure.find("masked_position"), std::string::npos) << masked.outputs[0].cmp.failure;
  JudgeOptions stable;
  stable.topk_stable_order = true;
  const CaseResult order = judge_topk(logits, 1, 6, ranges, 3, std::vector<std::int32_t>{2, 0, 1}, stable);
  EXPECT_NE(order.outputs[0].cmp.failure.find("order"), std::string::npos) << order.outputs[0].cmp.failure;
}

}  // namespace
