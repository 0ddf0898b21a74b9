// SPEC §6.4 top-k: the reference selection and the acceptance predicate — accepts every valid
// tie-break, rejects each violation with a reason naming row, slot and rule.
#include "dsa/topk.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dsa/error.hpp"

namespace {

using dsa::TopkRule;
using dsa::VisibleRange;
constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<std::int32_t> reference(const std::vector<float>& logits, VisibleRange v, std::int64_t k) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(k));
  const VisibleRange ranges[] = {v};
  dsa::topk_indices(logits, 1, static_cast<std::int64_t>(logits.size()), ranges, k, out);
  return out;
}

dsa::TopkVerdict check(const std::vector<float>& logits, VisibleRange v, const std::vector<std::int32_t>& sel,
                       bool stable = false) {
  const VisibleRange ranges[] = {v};
  return dsa::check_topk(logits, 1, static_cast<std::int64_t>(logits.size()), ranges,
                         static_cast<std::int64_t>(sel.size()), sel, {stable});
}

TEST(Topk, ReferenceOrdersByLogitThenPositionWithNaNHighest) {
  // NaN ranks above every number; equal logits (3 at 0 and 2) by position.
  const std::vector<float> logits = {3, 1, 3, 2, kNaN, -kInf};
  EXPECT_EQ(reference(logits, {0, 6}, 4), (std::vector<std::int32_t>{4, 0, 2, 3}));
  // −0 and +0 tie: position decides.
  EXPECT_EQ(reference({0.0f, -0.0f, 0.0f}, {0, 3}, 2), (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(reference({-0.0f, 0.0f}, {0, 2}, 1), (std::vector<std::int32_t>{0}));
}

TEST(Topk, FewerVisibleThanKPadsWithMinusOne) {
  // Visible [2, 4) of {9, 9, 1, 5, 9}: 5 at 3, then 1 at 2, then −1 padding; −inf is selectable.
  EXPECT_EQ(reference({9, 9, 1, 5, 9}, {2, 4}, 4), (std::vector<std::int32_t>{3, 2, -1, -1}));
  EXPECT_EQ(reference({-kInf, 7}, {0, 2}, 3), (std::vector<std::int32_t>{1, 0, -1}));
  EXPECT_EQ(reference({1, 2}, {1, 1}, 2), (std::vector<std::int32_t>{-1, -1}));
}

TEST(Topk, PredicateAcceptsEveryValidTieBreakInAnyOrder) {
  // k = 3 of {5, 4, 4, 4, 4, 1}: position 0 must be in; any 2 of the four 4s (positions 1..4).
  const std::vector<float> logits = {5, 4, 4, 4, 4, 1};
  int accepted = 0, accepted_stable = 0;
  for (int a = 1; a <= 4; ++a)
    for (int b = a + 1; b <= 4; ++b) {
      std::vector<std::int32_t> sel = {0, a, b};
      std::sort(sel.begin(), sel.end());
      do {
        const auto v = check(logits, {0, 6}, sel);
        EXPECT_TRUE(v.accepted) << v.reason;
        accepted += v.accepted;
        accepted_stable += check(logits, {0, 6}, sel, true).accepted;
      } while (std::next_permutation(sel.begin(), sel.end()));
    }
  EXPECT_EQ(accepted, 6 * 6);
  EXPECT_EQ(accepted_stable, 6);  // one order per subset: 0 first, then the 4s by position
}

void expect_rejected(const dsa::TopkVerdict& v, TopkRule rule, std::int64_t slot) {
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.rule, rule) << v.reason;
  EXPECT_EQ(v.row, 0);
  EXPECT_EQ(v.slot, slot) << v.reason;
  EXPECT_NE(v.reason.find("row 0"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find(dsa::to_string(rule)), std::string::npos) << v.reason;
  if (slot >= 0) {
    EXPECT_NE(v.reason.find("slot " + std::to_string(slot)), std::string::npos) << v.reason;
  }
}

TEST(Topk, PredicateRejectsMissingStrictlyLargerPosition) {
  // 5 ranks above T = 4 and is missing, although every selected logit is ≥ T.
  expect_rejected(check({5, 4, 4, 4, 4, 1}, {0, 6}, {1, 2, 3}), TopkRule::missing_larger, -1);
  // A visible NaN ranks above everything: leaving it out is a missing larger position
  // (k = 2: T = 2, both 2s are selected, NaN at 1 is not).
  expect_rejected(check({1, kNaN, 2, 2}, {0, 4}, {2, 3}), TopkRule::missing_larger, -1);
  // With k = 1 the NaN itself is T, and the selected 2 ranks below it.
  expect_rejected(check({1, kNaN, 2}, {0, 3}, {2}), TopkRule::below_kth_largest, 0);
}

TEST(Topk, PredicateRejectsLogitBelowKthLargest) {
  expect_rejected(check({5, 4, 4, 4, 4, 1}, {0, 6}, {0, 1, 5}), TopkRule::below_kth_largest, 2);
}

TEST(Topk, PredicateRejectsDuplicate) {
  expect_rejected(check({5, 4, 4, 4, 4, 1}, {0, 6}, {0, 2, 2}), TopkRule::duplicate, 2);
}

TEST(Topk, PredicateRejectsMaskedOrOutOfRangePosition) {
  const std::vector<float> logits = {5, 4, 3, 2, 100, 1};  // position 4 is masked (outside [0, 4))
  expect_rejected(check(logits, {0, 4}, {4, 0}), TopkRule::masked_position, 0);
  expect_rejected(check(logits, {0, 4}, {0, -7}), TopkRule::masked_position, 1);
  expect_rejected(check(logits, {0, 4}, {0, 1 << 30}), TopkRule::masked_position, 1);
  expect_rejected(check(logits, {1, 4}, {0, 1}), TopkRule::masked_position, 0);
}

TEST(Topk, PredicateRejectsWrongCount) {
  // Two visible positions, k = 4: both must be there.
  expect_rejected(check({3, 2, 1}, {0, 2}, {0, -1, -1, -1}), TopkRule::wrong_count, -1);
  // Six visible, k = 3, only two given.
  expect_rejected(check({5, 4, 4, 4, 4, 1}, {0, 6}, {0, 1, -1}), TopkRule::wrong_count, -1);
  expect_rejected(check({5, 4, 4, 4, 4, 1}, {0, 6}, {0, -1, 1}), TopkRule::wrong_count, -1);
}

TEST(Topk, PredicateRejectsWrongPadding) {
  // Two visible of k = 4: slots 2 and 3 must hold −1.
  expect_rejected(check({3, 2, 1}, {0, 2}, {0, 1, -2, -1}), TopkRule::wrong_padding, 2);
  expect_rejected(check({3, 2, 1}, {0, 2}, {0, 1, -1, 0}), TopkRule::wrong_padding, 3);
  expect_rejected(check({3, 2, 1}, {0, 2}, {0, -1, 1, -1}), TopkRule::wrong_padding, 2);  // −1 before a position
  expect_rejected(check({3, 2, 1}, {0, 2}, {0, 1, 2, -1}), TopkRule::wrong_padding, 2);
}

TEST(Topk, PredicateRejectsOrderOnlyWhenStableOrderIsRequired) {
  const std::vector<float> logits = {5, 4, 4, 4, 4, 1};
  EXPECT_TRUE(check(logits, {0, 6}, {2, 0, 1}).accepted);
  expect_rejected(check(logits, {0, 6}, {2, 0, 1}, true), TopkRule::order, 1);
  expect_rejected(check(logits, {0, 6}, {0, 2, 1}, true), TopkRule::order, 2);  // ties: position ascending
  EXPECT_TRUE(check(logits, {0, 6}, {0, 1, 2}, true).accepted);
  EXPECT_TRUE(check(logits, {0, 6}, {0, 3, 4}, true).accepted);  // other tie choice, in order
}

TEST(Topk, ArgumentsAreValidated) {
  const std::vector<float> logits(8, 0.0f);
  std::vector<std::int32_t> out(4);
  const VisibleRange beyond[] = {{0, 9}};
  EXPECT_THROW(dsa::topk_indices(logits, 1, 8, beyond, 4, out), dsa::InvalidArgument);
  const VisibleRange ok[] = {{0, 8}};
  EXPECT_THROW(dsa::topk_indices(logits, 1, 8, ok, 5, out), dsa::InvalidArgument);
  EXPECT_THROW(dsa::check_topk(logits, 2, 8, ok, 4, out), dsa::InvalidArgument);
  EXPECT_THROW(dsa::topk_indices(logits, 1, 8, ok, std::int64_t{1} << 62, out), dsa::InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
struct Rows {
  std::int64_t rows = 0, stride = 0, k = 1;
  std::vector<float> logits;
  std::vector<VisibleRange> ranges;
};

// Logits drawn from a few values (ties everywhere), with NaN, ±inf and ±0 among them.
rc::Gen<Rows> gen_rows() {
  return rc::gen::exec([] {
    Rows c;
    c.rows = *rc::gen::inRange<std::int64_t>(1, 6);
    c.stride = *rc::gen::inRange<std::int64_t>(0, 300);
    c.k = *rc::gen::inRange<std::int64_t>(1, 80);
    const int distinct = *rc::gen::inRange(1, 12);
    std::mt19937_64 rng(*rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>()));
    const float pool[] = {0.0f, -0.0f, 1.0f, -1.0f, 2.5f, kInf, -kInf, kNaN, 7.0f, -3.0f, 1e-30f, 1e30f};
    c.logits.resize(static_cast<std::size_t>(c.rows * c.stride));
    for (auto& x : c.logits) x = pool[rng() % static_cast<std::uint64_t>(distinct)];
    for (std::int64_t r = 0; r < c.rows; ++r) {
      std::int64_t a = c.stride ? static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(c.stride + 1)) : 0;
      std::int64_t b = c.stride ? static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(c.stride + 1)) : 0;
      c.ranges.push_back({std::min(a, b), std::max(a, b)});
    }
    return c;
  });
}

RC_GTEST_PROP(Topk, ReferenceEqualsFullStableSort, ()) {
  const Rows c = *gen_rows();
  std::vector<std::int32_t> out(static_cast<std::size_t>(c.rows * c.k));
  dsa::topk_indices(c.logits, c.rows, c.stride, c.ranges, c.k, out);
  for (std::int64_t r = 0; r < c.rows; ++r) {
    const float* row = c.logits.data() + r * c.stride;
    std::vector<std::int32_t> all(static_cast<std::size_t>(c.ranges[static_cast<std::size_t>(r)].size()));
    std::iota(all.begin(), all.end(), static_cast<std::int32_t>(c.ranges[static_cast<std::size_t>(r)].begin));
    std::stable_sort(all.begin(), all.end(), [&](std::int32_t a, std::int32_t b) {
      return dsa::topk_compare_values(row[a], row[b]) > 0;
    });
    all.resize(static_cast<std::size_t>(c.k), -1);
    RC_ASSERT(std::equal(all.begin(), all.end(), out.begin() + r * c.k));
  }
  const auto v = dsa::check_topk(c.logits, c.rows, c.stride, c.ranges, c.k, out, {true});
  RC_ASSERT(v.accepted);
}

// Any valid selection: every position ranking above T, a random choice among the ties at T,
// in a random order, then −1. Accepted; with stable order required, accepted iff in order.
RC_GTEST_PROP(Topk, PredicateAcceptsAnyValidTieBreak, ()) {
  const Rows c = *gen_rows();
  std::mt19937_64 rng(*rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>()));
  std::vector<std::int32_t> sel(static_cast<std::size_t>(c.rows * c.k), -1);
  for (std::int64_t r = 0; r < c.rows; ++r) {
    const VisibleRange v = c.ranges[static_cast<std::size_t>(r)];
    const float* row = c.logits.data() + r * c.stride;
    const std::int64_t m = std::min<std::int64_t>(c.k, v.size());
    if (m == 0) continue;
    std::vector<std::int32_t> all(static_cast<std::size_t>(v.size()));
    std::iota(all.begin(), all.end(), static_cast<std::int32_t>(v.begin));
    std::shuffle(all.begin(), all.end(), rng);  // random tie order
    std::stable_sort(all.begin(), all.end(), [&](std::int32_t a, std::int32_t b) {
      return dsa::topk_compare_values(row[a], row[b]) > 0;
    });
    std::shuffle(all.begin(), all.begin() + m, rng);
    std::copy(all.begin(), all.begin() + m, sel.begin() + r * c.k);
  }
  const auto v = dsa::check_topk(c.logits, c.rows, c.stride, c.ranges, c.k, sel);
  if (!v.accepted) RC_FAIL(v.reason);
  const auto stable = dsa::check_topk(c.logits, c.rows, c.stride, c.ranges, c.k, sel, {true});
  RC_ASSERT(stable.accepted || stable.rule == TopkRule::order);
}

}  // namespace
