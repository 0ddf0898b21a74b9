// The interim bound (sparse_mla_interim_bound.hpp): its measured constants hold for the exp and
// log that fast uses, and it is tight enough to reject small real errors.
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>

#include "reference/sparse_mla_cases.hpp"

namespace dsa {
namespace {

constexpr double u = 0x1p-24;

// fast evaluates exp with Eigen's vectorized exp (whole packets) and std::exp (tails, α, the
// combine), on arguments ≤ 0 whose results matter (> 2^−126; below that the bound's absolute
// floor applies). Every 2^−14-th float in [−87, 1] is checked.
TEST(SparseMlaInterimBound, ExpAccuracyIsWithinTheBoundsConstant) {
  const int n = 1 << 14;
  Eigen::ArrayXf x(n), y(n);
  double worst_packet = 0, worst_scalar = 0;
  for (int lo = -87; lo < 1; ++lo) {
    for (int i = 0; i < n; ++i) x[i] = static_cast<float>(lo) + static_cast<float>(i) / n;
    y = x.exp();
    for (int i = 0; i < n; ++i) {
      const double want = std::exp(static_cast<double>(x[i]));
      worst_packet = std::max(worst_packet, std::fabs(y[i] - want) / want / u);
      worst_scalar = std::max(worst_scalar, std::fabs(std::exp(x[i]) - want) / want / u);
    }
  }
  EXPECT_LE(worst_packet, kFastExpUlps);
  EXPECT_LE(worst_scalar, kFastExpUlps);
}

// log is applied to sums l ∈ [1, n]; the bound charges c_l·u·max(1, |ln l|) absolutely.
TEST(SparseMlaInterimBound, LogAccuracyIsWithinTheBoundsConstant) {
  double worst = 0;
  for (int i = 0; i < (1 << 22); ++i) {
    for (const float v : {1.0f + static_cast<float>(i) * 0x1p-22f, 1.0f + static_cast<float>(i) * 0.25f}) {
      const double want = std::log(static_cast<double>(v));
      worst = std::max(worst, std::fabs(std::log(v) - want) / std::max(1.0, std::fabs(want)) / u);
    }
  }
  EXPECT_LE(worst, kFastLogUlps);
}

// The bound is a worst case (γ_D on every dot product), so it is loose for the lse and for outputs
// that are averages of large, cancelling values; it must still reject the errors of real bugs:
// a slot dropped by an off-by-one length, sm_scale off by 1 %, an ignored sink.
TEST(SparseMlaInterimBound, RejectsTheErrorsOfRealBugs) {
  test::CaseSpec spec;
  spec.B = 2;
  spec.H = 16;
  spec.primary.topk = 256;
  spec.primary.num_blocks = 8;
  spec.primary.page_tokens = 64;
  spec.primary.lengths = true;
  spec.sink = test::SinkKind::finite;
  spec.seed = 3;
  const test::DecodeCase c = test::build_case(spec);
  SparseMlaGoldStats stats;
  const SparseMlaGold gold = sparse_mla_decode_gold(c.params(), &stats);
  const SparseMlaBound bound = sparse_mla_interim_bound(gold, stats, c.conventions, 1);
  auto verdict = [&](const test::DecodeCase& mutated) {
    test::Outputs fast(c.T(), c.H);
    sparse_mla_decode_fast(mutated.params(), fast.view());
    return test::check_against_gold(fast, gold, bound);
  };
  ASSERT_EQ(verdict(c), "");
  {
    test::DecodeCase m = c;
    for (auto& l : m.topk_length) l = std::max(l, 2) - 1;
    EXPECT_NE(verdict(m), "") << "off-by-one topk_length";
  }
  {
    test::DecodeCase m = c;
    m.sm_scale = 1.01f * effective_sm_scale(0.0f, 576);
    EXPECT_NE(verdict(m), "") << "sm_scale off by 1 %";
  }
  {
    test::DecodeCase m = c;
    m.sink.clear();
    EXPECT_NE(verdict(m), "") << "sink ignored";
  }
}

}  // namespace
}  // namespace dsa
