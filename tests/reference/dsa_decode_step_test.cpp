// SPEC §6.5 DSA decode step: the one call equals its three stages run by hand, the top-k passes
// the acceptance predicate, only selected positions of the MLA cache are read, empty rows follow
// SPEC §4, and errors name their stage.
#include "dsa/dsa_decode_step.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dsa/error.hpp"
#include "dsa/quantize.hpp"
#include "dsa/topk.hpp"
#include "reference/indexer_cases.hpp"

namespace {

using dsa::MlaLayout;

constexpr std::int32_t kMlaPage = 16;
constexpr int kMlaHeads = 3;

// An indexer case plus a V32 MLA cache holding every position some row sees (its own shuffled
// block table; every other byte of the pool is 0xFF: NaN codes, NaN scales, NaN bf16), and
// bf16 queries.
struct StepCase {
  idx_test::PagedCase indexer;
  dsa::MlaCacheBuffer mla_cache;
  std::vector<std::int32_t> mla_table;
  std::int64_t mla_max_blocks = 0;
  std::vector<std::uint16_t> mla_q;

  explicit StepCase(const idx_test::PagedShape& s)
      : indexer(idx_test::make_paged_case(s)),
        mla_cache(dsa::MlaCacheGeometry::packed(MlaLayout::V32, dsa::Fp8Format::e4m3fn,
                                                s.batch * ((indexer.max_ctx + kMlaPage - 1) / kMlaPage) + 1, kMlaPage)) {
    std::mt19937_64 rng(s.seed + 1);
    std::normal_distribution<float> normal;
    mla_max_blocks = (indexer.max_ctx + kMlaPage - 1) / kMlaPage;
    std::fill(mla_cache.values.begin(), mla_cache.values.end(), 0xFF);
    mla_table.resize(static_cast<std::size_t>(s.batch * mla_max_blocks));
    std::vector<std::int32_t> perm(static_cast<std::size_t>(mla_cache.geo.num_blocks));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::copy(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(mla_table.size()), mla_table.begin());
    const auto ranges = dsa::visible_ranges(indexer.params());
    std::vector<float> rows;
    std::vector<std::int64_t> slots;
    for (std::int64_t b = 0; b < s.batch; ++b) {
      std::int64_t end = 0;
      for (std::int64_t i = 0; i < s.next_n; ++i) end = std::max(end, ranges[static_cast<std::size_t>(b * s.next_n + i)].end);
      for (std::int64_t t = 0; t < end; ++t) {
        for (int d = 0; d < 576; ++d) rows.push_back(normal(rng));
        slots.push_back(static_cast<std::int64_t>(mla_table[static_cast<std::size_t>(b * mla_max_blocks + t / kMlaPage)]) *
                            kMlaPage + t % kMlaPage);
      }
    }
    dsa::quantize_kv(rows, static_cast<std::int64_t>(slots.size()), 576, slots, mla_cache.span());
    mla_q.resize(static_cast<std::size_t>(s.batch * s.next_n * kMlaHeads * 576));
    for (auto& x : mla_q) x = dsa::f32_to_bf16(normal(rng));
  }

  dsa::DsaDecodeStepParams params(std::int32_t topk) {
    dsa::DsaDecodeStepParams p;
    p.indexer = indexer.params();
    p.topk = topk;
    p.mla.q = mla_q;
    p.mla.B = indexer.shape.batch;
    p.mla.S_q = indexer.shape.next_n;
    p.mla.H = kMlaHeads;
    p.mla.cache = mla_cache.view();
    p.mla.block_table = mla_table;
    p.mla.max_blocks = mla_max_blocks;
    return p;
  }

  // Makes token `pos` of sequence b NaN in the MLA cache.
  void poison(std::int64_t b, std::int64_t pos) {
    const std::int64_t block = mla_table[static_cast<std::size_t>(b * mla_max_blocks + pos / kMlaPage)];
    std::uint8_t* token = mla_cache.values.data() + block * mla_cache.geo.block_stride_bytes +
                          dsa::layout::V32::dim_offset(pos % kMlaPage, 0);
    std::fill(token, token + dsa::layout::V32::token_bytes, 0xFF);
  }
};

idx_test::PagedShape shape() {
  idx_test::PagedShape s;
  s.batch = 3;
  s.next_n = 2;
  s.heads = 8;
  s.dim = 64;
  s.page = 16;
  s.layout = dsa::IndexKLayout::preshuffle;
  s.ctx = {75, 1, 20};  // sequence 1: ctx < next_n, so row (1, 0) sees nothing
  s.seed = 11;
  return s;
}

bool same_bits(const void* a, const void* b, std::size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

void expect_equals_stages(StepCase& c, std::int32_t topk, bool gold) {
  const auto p = c.params(topk);
  const dsa::DsaDecodeStepResult r = gold ? dsa::gold::dsa_decode_step(p) : dsa::fast::dsa_decode_step(p);
  const std::int64_t rows = p.indexer.rows();
  ASSERT_EQ(r.rows, rows);

  // Stage 1: the logits of a direct call.
  auto ip = c.indexer.params();
  c.indexer.fill_sentinel();
  gold ? dsa::gold::paged_mqa_logits(ip) : dsa::fast::paged_mqa_logits(ip);
  for (std::int64_t row = 0; row < rows; ++row)
    EXPECT_TRUE(same_bits(r.logits.data() + row * r.max_ctx, c.indexer.logits.data() + row * c.indexer.row_stride,
                          static_cast<std::size_t>(r.max_ctx) * sizeof(float)))
        << "row " << row;

  // Stage 2: the reference top-k of those logits, accepted by the predicate with stable order.
  EXPECT_EQ(r.ranges, dsa::visible_ranges(ip));
  std::vector<std::int32_t> want(static_cast<std::size_t>(rows * topk));
  dsa::topk_indices(r.logits, rows, r.max_ctx, r.ranges, topk, want);
  EXPECT_EQ(r.indices, want);
  const auto verdict = dsa::check_topk(r.logits, rows, r.max_ctx, r.ranges, topk, r.indices, {true});
  EXPECT_TRUE(verdict.accepted) << verdict.reason;

  // Stage 3: sparse MLA decode, logical mode, over those indices.
  auto mp = p.mla;
  mp.index_mode = dsa::IndexMode::logical;
  mp.indices = r.indices;
  mp.topk = topk;
  std::vector<std::uint16_t> out(r.out.size());
  std::vector<float> lse(r.lse.size());
  const dsa::SparseMlaOutputs o{out, lse, {}};
  gold ? dsa::sparse_mla_decode_gold(mp, o) : dsa::sparse_mla_decode_fast(mp, o);
  EXPECT_TRUE(same_bits(out.data(), r.out.data(), out.size() * 2));
  EXPECT_TRUE(same_bits(lse.data(), r.lse.data(), lse.size() * 4));
}

TEST(DsaDecodeStep, EqualsItsThreeStagesGold) {
  StepCase c(shape());
  expect_equals_stages(c, 8, true);
}

TEST(DsaDecodeStep, EqualsItsThreeStagesFast) {
  StepCase c(shape());
  expect_equals_stages(c, 8, false);
}

TEST(DsaDecodeStep, DefaultTopkSelectsEveryVisiblePositionWhenFewer) {
  StepCase c(shape());
  dsa::DsaDecodeStepParams p = c.params(8);
  p.topk = dsa::DsaDecodeStepParams{}.topk;
  ASSERT_EQ(p.topk, 2048);
  const auto r = dsa::fast::dsa_decode_step(p);
  for (std::int64_t row = 0; row < r.rows; ++row) {
    const auto v = r.ranges[static_cast<std::size_t>(row)];
    const std::int32_t* sel = r.indices.data() + row * 2048;
    std::set<std::int32_t> got(sel, sel + v.size());
    EXPECT_EQ(static_cast<std::int64_t>(got.size()), v.size()) << row;
    EXPECT_TRUE(got.empty() || (*got.begin() == v.begin && *got.rbegin() == v.end - 1)) << row;
    for (std::int64_t j = v.size(); j < 2048; ++j) ASSERT_EQ(sel[j], -1) << row << " " << j;
  }
}

TEST(DsaDecodeStep, RowWithNothingVisibleGivesZeroOutAndInfiniteLse) {
  StepCase c(shape());
  for (bool gold : {true, false}) {
    const auto p = c.params(8);
    const auto r = gold ? dsa::gold::dsa_decode_step(p) : dsa::fast::dsa_decode_step(p);
    const std::int64_t row = 1 * 2 + 0;  // sequence 1, row 0: ctx 1 − N 2 + 0 < 0
    ASSERT_TRUE(r.ranges[row].empty());
    for (int h = 0; h < kMlaHeads; ++h) {
      EXPECT_EQ(r.lse[static_cast<std::size_t>(row * kMlaHeads + h)], std::numeric_limits<float>::infinity());
      for (int d = 0; d < 512; ++d) EXPECT_EQ(r.out[static_cast<std::size_t>((row * kMlaHeads + h) * 512 + d)], 0);
    }
  }
}

// Poisoning every MLA token no row selected (visible or not) changes no bit of the outputs.
TEST(DsaDecodeStep, OnlySelectedPositionsOfTheMlaCacheAreRead) {
  StepCase c(shape());
  for (bool gold : {true, false}) {
    const auto p = c.params(8);
    const auto before = gold ? dsa::gold::dsa_decode_step(p) : dsa::fast::dsa_decode_step(p);
    for (float x : before.lse) EXPECT_FALSE(std::isnan(x));
    const auto& s = c.indexer.shape;
    for (std::int64_t b = 0; b < s.batch; ++b) {
      std::set<std::int32_t> used;
      for (std::int64_t i = 0; i < s.next_n; ++i)
        for (std::int32_t j = 0; j < 8; ++j) used.insert(before.indices[static_cast<std::size_t>((b * s.next_n + i) * 8 + j)]);
      for (std::int64_t t = 0; t < c.mla_max_blocks * kMlaPage; ++t)
        if (!used.count(static_cast<std::int32_t>(t))) c.poison(b, t);
    }
    const auto after = gold ? dsa::gold::dsa_decode_step(c.params(8)) : dsa::fast::dsa_decode_step(c.params(8));
    EXPECT_EQ(before.out, after.out);
    EXPECT_TRUE(same_bits(before.lse.data(), after.lse.data(), before.lse.size() * 4));
  }
}

TEST(DsaDecodeStep, ErrorsNameTheirStageAndNothingRuns) {
  StepCase c(shape());
  auto expect_error = [&](dsa::DsaDecodeStepParams p, const std::string& needle) {
    try {
      dsa::fast::dsa_decode_step(p);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const dsa::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_THROW(dsa::validate(p), dsa::InvalidArgument);
  };
  std::vector<std::int32_t> some(8, 0);
  auto p = c.params(8);
  p.mla.indices = some;
  expect_error(p, "mla.indices");
  p = c.params(8);
  p.mla.B = 2;
  expect_error(p, "mla.B");
  p = c.params(8);
  p.mla.S_q = 1;
  expect_error(p, "mla.S_q");
  p = c.params(0);
  expect_error(p, "topk");
  auto table = c.indexer.block_table;
  table[0] = -5;
  p = c.params(8);
  p.indexer.block_table = table;
  expect_error(p, "indexer.block_table: entry [0][0]");
  p = c.params(8);
  p.mla.max_blocks = -1;
  expect_error(p, "mla.max_blocks");
  p = c.params(8);
  p.indexer.max_ctx = std::int64_t{1} << 62;
  expect_error(p, "indexer.max_ctx");
  p = c.params(8);
  p.indexer.batch = p.mla.B = std::int64_t{1} << 40;
  expect_error(p, "indexer.");
  p = c.params(8);
  p.mla.H = 1 << 30;
  expect_error(p, "mla.q");
  // A layout mismatch keeps its type and names both layouts.
  p = c.params(8);
  p.indexer.reader_layout = dsa::IndexKLayout::standard;
  EXPECT_THROW(dsa::fast::dsa_decode_step(p), dsa::LayoutMismatch);
}

}  // namespace
