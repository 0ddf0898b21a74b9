// SPEC §6.2/§9 write contracts of indexer logits: which positions a checker may read, and an
// outside kernel that leaves masked positions untouched judged on what it promises.
#include "dsa/write_contract.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "dsa/paged_mqa_logits.hpp"
#include "reference/indexer_cases.hpp"

namespace {

using dsa::VisibleRange;
using dsa::WriteContract;

TEST(WriteContract, AllDefinesEveryPositionBelowMaxCtx) {
  for (std::int64_t t = -1; t <= 8; ++t)
    EXPECT_EQ(dsa::write_contract_defines(WriteContract::all, {0, 3}, t, 8, 4), t >= 0 && t < 8) << t;
}

TEST(WriteContract, VisibleDefinesOnlyVisiblePositions) {
  for (std::int64_t t = 0; t < 8; ++t)
    EXPECT_EQ(dsa::write_contract_defines(WriteContract::visible, {2, 5}, t, 8, 4), t >= 2 && t < 5) << t;
}

TEST(WriteContract, CeilPageDefinesUpToThePageRoundedEnd) {
  // End 5, page 4 → [0, 8); max_ctx 6 cuts it to [0, 6). End 8 is already a page boundary.
  for (std::int64_t t = 0; t < 10; ++t) {
    EXPECT_EQ(dsa::write_contract_defines(WriteContract::ceil_page, {0, 5}, t, 10, 4), t < 8) << t;
    EXPECT_EQ(dsa::write_contract_defines(WriteContract::ceil_page, {0, 5}, t, 6, 4), t < 6) << t;
    EXPECT_EQ(dsa::write_contract_defines(WriteContract::ceil_page, {0, 8}, t, 10, 4), t < 8) << t;
    EXPECT_FALSE(dsa::write_contract_defines(WriteContract::ceil_page, {0, 0}, t, 10, 4)) << t;
  }
}

// An outside kernel that writes only what its contract promises (sentinel elsewhere): every
// sentinel falls in the skip mask of its contract, every defined masked position holds −inf,
// and the stricter `all` contract would see the unwritten positions.
TEST(WriteContract, KernelLeavingMaskedPositionsUntouchedIsJudgedOnItsPromise) {
  idx_test::PagedShape s;
  s.batch = 2;
  s.next_n = 2;
  s.heads = 4;
  s.dim = 32;
  s.page = 16;
  s.ctx = {37, 5};
  s.max_ctx_slack = 40;
  idx_test::PagedCase c = idx_test::make_paged_case(s);
  const auto p = c.params();
  dsa::fast::paged_mqa_logits(p);
  const auto full = c.logits;
  const auto ranges = dsa::visible_ranges(p);
  for (WriteContract contract : {WriteContract::visible, WriteContract::ceil_page}) {
    // The "kernel": our result where the contract defines a position, untouched elsewhere.
    c.fill_sentinel();
    for (std::size_t r = 0; r < ranges.size(); ++r)
      for (std::int64_t t = 0; t < c.max_ctx; ++t)
        if (dsa::write_contract_defines(contract, ranges[r], t, c.max_ctx, s.page))
          c.logits[r * static_cast<std::size_t>(c.row_stride) + static_cast<std::size_t>(t)] =
              full[r * static_cast<std::size_t>(c.row_stride) + static_cast<std::size_t>(t)];
    const auto skip = dsa::write_contract_skip_mask(contract, ranges, c.max_ctx, s.page);
    const auto skip_all = dsa::write_contract_skip_mask(WriteContract::all, ranges, c.max_ctx, s.page);
    std::int64_t unwritten = 0, seen_by_all = 0;
    for (std::size_t r = 0; r < ranges.size(); ++r)
      for (std::int64_t t = 0; t < c.max_ctx; ++t) {
        const std::size_t m = r * static_cast<std::size_t>(c.max_ctx) + static_cast<std::size_t>(t);
        const float x = c.logits[r * static_cast<std::size_t>(c.row_stride) + static_cast<std::size_t>(t)];
        if (idx_test::is_sentinel(x)) {
          ++unwritten;
          EXPECT_EQ(skip[m], 1) << dsa::to_string(contract) << " row " << r << " t " << t;
          seen_by_all += skip_all[m] == 0;
        } else if (!ranges[r].contains(t)) {
          EXPECT_EQ(x, -std::numeric_limits<float>::infinity());
        }
      }
    EXPECT_GT(unwritten, 0) << dsa::to_string(contract);
    EXPECT_EQ(seen_by_all, unwritten) << dsa::to_string(contract);
  }
}

}  // namespace
