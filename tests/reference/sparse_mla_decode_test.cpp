// SPEC §4 sparse_mla_decode: hand-derived cases, validation (SPEC §8), fast vs gold on random
// cases, and the never-touch-invalid rules (exact-size caches, poisoned unreferenced rows).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <limits>

#include "dsa/error.hpp"
#include "reference/sparse_mla_cases.hpp"

namespace dsa {
namespace {

using test::DecodeCase;
using test::Outputs;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kDv = 512;

// A V32-shaped BF16 cache (D_qk 576) of one page of `rows.size() / 576` tokens, written exactly.
MlaCacheBuffer bf16_cache(const std::vector<float>& rows, int dim_qk = 576) {
  const std::int64_t n = static_cast<std::int64_t>(rows.size()) / dim_qk;
  MlaCacheBuffer c(MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 1, static_cast<std::int32_t>(n), dim_qk));
  std::vector<std::int64_t> slots(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) slots[static_cast<std::size_t>(i)] = i;
  quantize_kv(rows, n, dim_qk, slots, c.span());
  return c;
}

// One query row, one head, q given as floats (exact in bf16).
DecodeCase one_row_case(MlaCacheBuffer cache, std::vector<float> q, std::vector<std::int32_t> indices) {
  DecodeCase c;
  c.B = 1;
  c.S_q = 1;
  c.H = 1;
  c.cache = std::move(cache);
  c.topk = static_cast<std::int32_t>(indices.size());
  c.indices = std::move(indices);
  for (float v : q) c.q.push_back(f32_to_bf16(v));
  return c;
}

struct Variant {
  const char* name;
  SparseMlaFastOptions options;
};
const Variant kVariants[] = {
    {"fused", {MlaFastAlgo::fused, 1}},  {"staged", {MlaFastAlgo::staged, 1}},
    {"split2", {MlaFastAlgo::fused, 2}}, {"split3-staged", {MlaFastAlgo::staged, 3}},
    {"split16", {MlaFastAlgo::fused, 16}},
};

// Runs gold (rounded) and every fast variant; returns the outputs in that order.
std::vector<Outputs> run_all(const DecodeCase& c) {
  std::vector<Outputs> all;
  all.emplace_back(c.T(), c.H);
  sparse_mla_decode_gold(c.params(), all.back().view());
  for (const auto& v : kVariants) {
    all.emplace_back(c.T(), c.H);
    sparse_mla_decode_fast(c.params(), all.back().view(), v.options);
  }
  return all;
}

std::string variant_name(std::size_t i) { return i == 0 ? "gold" : kVariants[i - 1].name; }

// Rows: token t has k[0] = t + 1 and a few marker dims; everything else 0.
std::vector<float> marker_rows(int tokens) {
  std::vector<float> rows(static_cast<std::size_t>(tokens * 576), 0.0f);
  for (int t = 0; t < tokens; ++t) {
    float* k = &rows[static_cast<std::size_t>(t * 576)];
    k[0] = static_cast<float>(t + 1);
    k[1] = 0.5f * static_cast<float>(t);
    k[7] = -1.5f;
    k[511] = 0.25f * static_cast<float>(t + 1);
    k[540] = 1.0f;  // RoPE: enters the logit, not the value
  }
  return rows;
}

std::vector<float> unit_q(std::initializer_list<std::pair<int, float>> entries, int dim = 576) {
  std::vector<float> q(static_cast<std::size_t>(dim), 0.0f);
  for (auto [d, v] : entries) q[static_cast<std::size_t>(d)] = v;
  return q;
}

// ------------------------------------------------------------------------------------------------
// Hand-derived answers.

TEST(SparseMlaDecode, OneValidSlotReturnsThatValueRowAndItsLogit) {
  // Token 2: k[0] = 3, k[1] = 1, k[540] = 1. q = (0.5, 1, …, q[540] = 2): ⟨q, k⟩ = 1.5 + 1 + 2 = 4.5;
  // sm_scale 0.5 → z = 2.25. Every other slot is invalid (out of range or −1).
  DecodeCase c = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 0.5f}, {1, 1.0f}, {540, 2.0f}}),
                              {-1, 2, INT_MIN, 4, INT_MAX, -123456});
  c.sm_scale = 0.5f;
  const auto all = run_all(c);
  for (std::size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(variant_name(i));
    const Outputs& o = all[i];
    EXPECT_EQ(o.lse[0], 2.25f);
    EXPECT_EQ(o.max_logits[0], 2.25f);
    EXPECT_EQ(bf16_to_f32(o.out[0]), 3.0f);
    EXPECT_EQ(bf16_to_f32(o.out[1]), 1.0f);
    EXPECT_EQ(bf16_to_f32(o.out[7]), -1.5f);
    EXPECT_EQ(bf16_to_f32(o.out[511]), 0.75f);
    for (int d : {2, 3, 100, 510}) EXPECT_EQ(o.out[static_cast<std::size_t>(d)], 0u);
  }
}

TEST(SparseMlaDecode, TwoSlotsFollowTheAnalyticSoftmax) {
  // q = e_0, sm_scale 1: z = k[0] = t + 1, so slots {0, 1} have z = 1, 2:
  // p = (1, e) / (1 + e), lse = ln(e + e²), out = p_0·v_0 + p_1·v_1.
  DecodeCase c = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 1.0f}}), {1, -1, 0});
  c.sm_scale = 1.0f;
  const double e = std::exp(1.0);
  const double p0 = 1 / (1 + e), p1 = e / (1 + e);
  const double lse = std::log(e + e * e);
  const auto rows = marker_rows(4);
  for (const auto& o : run_all(c)) {
    EXPECT_NEAR(o.lse[0], lse, 4e-7);
    EXPECT_EQ(o.max_logits[0], 2.0f);
    for (int d : {0, 1, 7, 511}) {
      const double want = p0 * rows[static_cast<std::size_t>(d)] + p1 * rows[static_cast<std::size_t>(576 + d)];
      EXPECT_NEAR(bf16_to_f32(o.out[static_cast<std::size_t>(d)]), want, std::fabs(want) * 0x1p-8) << "d=" << d;
    }
  }
}

TEST(SparseMlaDecode, AllInvalidGivesZeroAndLseEmpty) {
  const std::vector<std::int32_t> invalid = {-1, INT_MIN, 4, INT_MAX, -123456, 5};
  for (const MlaConventions conv : {MlaConventions::flashmla(), MlaConventions::xkernels()}) {
    DecodeCase c = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 1.0f}}), invalid);
    c.conventions = conv;
    for (const auto& o : run_all(c)) {
      for (auto code : o.out) ASSERT_EQ(code, 0u);
      EXPECT_EQ(o.lse[0], conv.lse_empty == LseEmpty::pos_inf ? kInf : -kInf);
      EXPECT_EQ(o.max_logits[0], -kInf);
    }
  }
  // Valid indices beyond topk_length count as invalid too.
  DecodeCase c = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 1.0f}}), {0, 1, 2});
  c.topk_length = {0};
  for (const auto& o : run_all(c)) {
    for (auto code : o.out) ASSERT_EQ(code, 0u);
    EXPECT_EQ(o.lse[0], kInf);
  }
  // With the sink in the lse (xkernels), an empty row's lse is the sink itself.
  c.conventions = MlaConventions::xkernels();
  c.sink = {1.5f};
  for (const auto& o : run_all(c)) EXPECT_EQ(o.lse[0], 1.5f);
}

TEST(SparseMlaDecode, SinkScalesOutAndIsExcludedFromLse) {
  // One valid slot with z = 2.25 and value v: out = v / (1 + exp(sink − 2.25)), lse = 2.25.
  DecodeCase c = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 0.5f}, {1, 1.0f}, {540, 2.0f}}), {2});
  c.sm_scale = 0.5f;
  c.sink = {2.25f};  // factor exactly 1/2
  for (const auto& o : run_all(c)) {
    EXPECT_EQ(o.lse[0], 2.25f);
    EXPECT_EQ(bf16_to_f32(o.out[0]), 1.5f);
    EXPECT_EQ(bf16_to_f32(o.out[7]), -0.75f);
  }
  c.sink = {kInf};  // sink +inf ⇒ out = 0; lse still excludes it
  for (const auto& o : run_all(c)) {
    for (auto code : o.out) ASSERT_EQ(code, 0u);
    EXPECT_EQ(o.lse[0], 2.25f);
  }
  c.sink = {-kInf};  // sink −inf ⇒ exactly no sink
  const auto with = run_all(c);
  c.sink.clear();
  const auto without = run_all(c);
  for (std::size_t i = 0; i < with.size(); ++i) EXPECT_TRUE(with[i].same_bits(without[i])) << variant_name(i);
  // sink_in_lse: lse = ln(e^2.25 + e^2.25) = 2.25 + ln 2.
  c.sink = {2.25f};
  c.conventions.sink_in_lse = true;
  for (const auto& o : run_all(c)) EXPECT_NEAR(o.lse[0], 2.25 + std::log(2.0), 4e-7);
  // base 2: lse₂ = 2.25 / ln 2.
  c.sink.clear();
  c.conventions = MlaConventions::flashmla_prefill_2025();
  for (const auto& o : run_all(c)) EXPECT_NEAR(o.lse[0], 2.25 / std::log(2.0), 4e-7);
}

TEST(SparseMlaDecode, ExtraCacheJoinsOneSoftmax) {
  // Primary slot z = 1 (token 0), extra slot z = 2 (token 1 of another cache): same as two slots
  // of one cache.
  DecodeCase joint = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 1.0f}}), {0, 1});
  joint.sm_scale = 1.0f;
  DecodeCase split = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 1.0f}}), {0, -1});
  split.sm_scale = 1.0f;
  split.extra_cache.emplace(bf16_cache(marker_rows(4)));
  split.extra_indices = {INT_MIN, 1, 3};
  split.extra_topk = 3;
  split.extra_topk_length = {2};  // slot 2 (token 3) is beyond the length
  const auto a = run_all(joint), b = run_all(split);
  // Same valid slots in the same order: bit-identical for gold and the single-pass variants
  // (split chunks cut the longer slot axis elsewhere).
  for (std::size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(variant_name(i));
    if (i <= 2) {
      EXPECT_TRUE(a[i].same_bits(b[i])) << test::first_difference(a[i], b[i]);
    } else {
      EXPECT_NEAR(a[i].lse[0], b[i].lse[0], 1e-6);
    }
  }
}

TEST(SparseMlaDecode, LogicalModeGoesThroughTheBlockTable) {
  // P = 2, pool of 3 blocks; sequence 0's table is {2, 0, -1}: position 1 → block 2 token 1
  // (pool token 5); position 4 → block −1 → invalid; position 6 → beyond max_blocks·P.
  MlaCacheBuffer pool = bf16_cache(marker_rows(6));
  DecodeCase phys = one_row_case(MlaCacheBuffer(pool), unit_q({{0, 1.0f}}), {5, -1});
  DecodeCase logi = one_row_case(MlaCacheBuffer(pool), unit_q({{0, 1.0f}}), {1, 4, 6});
  for (DecodeCase* c : {&phys, &logi}) {
    c->cache.geo.page_tokens = 2;
    c->cache.geo.num_blocks = 3;
    c->cache.geo.block_stride_bytes = c->cache.geo.page_bytes();
  }
  logi.mode = IndexMode::logical;
  logi.block_table = {2, 0, -1};
  logi.max_blocks = 3;
  const auto a = run_all(phys), b = run_all(logi);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].same_bits(b[i])) << variant_name(i);
  EXPECT_EQ(bf16_to_f32(a[0].out[0]), 6.0f);
}

// ------------------------------------------------------------------------------------------------
// Validation (SPEC §8): the error names the argument; nothing is written.

void expect_error(const DecodeCase& c, const std::string& argument) {
  Outputs o(c.T(), c.H);
  const Outputs before = o;
  try {
    sparse_mla_decode_fast(c.params(), o.view());
    ADD_FAILURE() << "no error for " << argument;
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
  }
  try {
    sparse_mla_decode_gold(c.params(), o.view());
    ADD_FAILURE() << "gold: no error for " << argument;
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
  }
  EXPECT_TRUE(o.same_bits(before));
}

TEST(SparseMlaDecode, ValidationNamesTheArgument) {
  const DecodeCase good = one_row_case(bf16_cache(marker_rows(4)), unit_q({{0, 1.0f}}), {0, 1});
  {
    DecodeCase c = good;
    c.indices.pop_back();
    expect_error(c, "indices");
  }
  {
    DecodeCase c = good;
    c.q.pop_back();
    expect_error(c, "q");
  }
  {
    DecodeCase c = good;
    c.sink = {};
    c.H = 2;
    c.q.resize(2 * 576);
    c.sink = {0.0f};
    expect_error(c, "attn_sink");
  }
  {
    DecodeCase c = good;
    c.topk_length = {};
    c.B = 1;
    c.extra_cache.emplace(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 1, 4));
    c.extra_cache->geo.page_tokens = 0;
    c.extra_indices = {0};
    c.extra_topk = 1;
    expect_error(c, "extra_cache.page_tokens");
  }
  {
    DecodeCase c = good;
    c.extra_cache.emplace(MlaCacheGeometry::packed(MlaLayout::MODEL1, Fp8Format::e4m3fn, 1, 4));
    c.extra_indices = {0};
    c.extra_topk = 1;
    expect_error(c, "extra_cache.layout");
  }
  {
    DecodeCase c = good;
    c.extra_cache.emplace(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 1, 4));
    c.extra_topk = -1;
    expect_error(c, "extra_topk");
  }
  {
    DecodeCase c = good;
    c.block_table = {0};
    expect_error(c, "block_table");
  }
  {
    DecodeCase c = good;
    c.mode = IndexMode::logical;
    c.max_blocks = 2;
    c.block_table = {0};
    expect_error(c, "block_table");
  }
  {
    DecodeCase c = good;
    c.topk_length = {};
    c.B = 2;
    c.q.resize(2 * 576);
    c.indices = {0, 1, 0, 1};
    c.topk_length = {1};
    expect_error(c, "topk_length");
  }
  {
    DecodeCase c = good;
    c.sm_scale = std::numeric_limits<float>::quiet_NaN();
    expect_error(c, "sm_scale");
  }
  {
    DecodeCase c = good;
    c.cache.values.pop_back();
    expect_error(c, "cache.values");
  }
  {
    Outputs o(1, 1);
    o.out.pop_back();
    EXPECT_THROW(sparse_mla_decode_fast(good.params(), o.view()), InvalidArgument);
  }
}

// ------------------------------------------------------------------------------------------------
// Random cases: fast within the interim bound of gold; poison and invalid indices never matter.

// The reader a staged run effectively uses: its workspace is bf16.
ReaderModel staged_reader(ReaderModel r) {
  r.operand = OperandAs::bf16;
  return r;
}

RC_GTEST_PROP(SparseMlaDecode, FastIsWithinTheInterimBoundOfGold, ()) {
  const auto spec = *test::gen_case_spec();
  DecodeCase c = test::build_case(spec);
  const int num_splits = *rc::gen::inRange(1, 5);
  for (const MlaFastAlgo algo : {MlaFastAlgo::fused, MlaFastAlgo::staged}) {
    if (algo == MlaFastAlgo::staged) c.reader = staged_reader(c.reader);
    SparseMlaGoldStats stats;
    const SparseMlaGold gold = sparse_mla_decode_gold(c.params(), &stats);
    for (const int ns : {1, num_splits}) {
      Outputs fast(c.T(), c.H);
      sparse_mla_decode_fast(c.params(), fast.view(), {algo, ns});
      const auto bound = sparse_mla_interim_bound(gold, stats, c.conventions, ns);
      const std::string failure = test::check_against_gold(fast, gold, bound);
      if (!failure.empty()) RC_FAIL(fmt::format("{} num_splits={}: {}", to_string(algo), ns, failure));
    }
  }
}

// Unreferenced rows poisoned with NaN codes change no bit of any implementation; the caches are
// sized exactly, so under ASan any read outside them fails.
RC_GTEST_PROP(SparseMlaDecode, PoisonedUnreferencedRowsNeverMatter, ()) {
  const auto spec = *test::gen_case_spec(8, 64);
  DecodeCase clean = test::build_case(spec);
  DecodeCase poisoned = clean;
  test::poison_unreferenced(poisoned);
  const auto a = run_all(clean), b = run_all(poisoned);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string diff = test::first_difference(a[i], b[i]);
    if (!diff.empty()) RC_FAIL(variant_name(i) + ": " + diff);
    for (auto code : a[i].out) RC_ASSERT(code != test::kSentinelBf16);
  }
}

// A few full-size fixed cases (H = 128, topk up to 2048, both layout families, extra cache,
// lengths and sinks), fast within the interim bound of gold.
TEST(SparseMlaDecode, FullSizeCasesAreWithinTheInterimBound) {
  struct Fixed {
    MlaLayout layout, extra_layout;
    std::int32_t topk, extra_topk;
    IndexMode mode;
  };
  for (const Fixed f : {Fixed{MlaLayout::V32, MlaLayout::BF16, 2048, 0, IndexMode::physical},
                        Fixed{MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, 512, 128, IndexMode::logical},
                        Fixed{MlaLayout::V32, MlaLayout::V32, 1024, 64, IndexMode::logical}}) {
    test::CaseSpec spec;
    spec.B = 2;
    spec.S_q = 1;
    spec.H = 128;
    spec.mode = f.mode;
    spec.primary.layout = f.layout;
    spec.primary.bf16_dim_qk = mla_dim_qk(f.layout);
    spec.primary.num_blocks = 48;
    spec.primary.page_tokens = 64;
    spec.primary.max_blocks = 48;
    spec.primary.topk = f.topk;
    spec.primary.lengths = true;
    if (f.extra_topk > 0) {
      test::CacheSpec e;
      e.layout = f.extra_layout;
      e.bf16_dim_qk = spec.primary.bf16_dim_qk;
      e.num_blocks = 4;
      e.page_tokens = 16;
      e.max_blocks = 4;
      e.topk = f.extra_topk;
      spec.extra = e;
    }
    spec.sink = test::SinkKind::finite;
    spec.scale_policy = ScalePolicy::fp32;
    spec.reader = ReaderModel::flashmla_sm90();
    spec.seed = 5;
    const DecodeCase c = test::build_case(spec);
    SparseMlaGoldStats stats;
    const SparseMlaGold gold = sparse_mla_decode_gold(c.params(), &stats);
    for (const auto& v : kVariants) {
      Outputs fast(c.T(), c.H);
      sparse_mla_decode_fast(c.params(), fast.view(), v.options);
      const auto bound = sparse_mla_interim_bound(gold, stats, c.conventions, v.options.num_splits);
      EXPECT_EQ(test::check_against_gold(fast, gold, bound), "") << to_string(f.layout) << " " << v.name;
    }
  }
}

TEST(SparseMlaDecode, EveryUnreferencedRowPoisonedAndEveryIndexInvalid) {
  // Every slot invalid in every way (nasty values, valid values beyond topk_length, block table
  // entries out of range) over a fully poisoned, exactly sized cache: nothing is read.
  for (const MlaLayout layout : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16}) {
    for (const IndexMode mode : {IndexMode::physical, IndexMode::logical}) {
      DecodeCase c;
      c.B = 2;
      c.S_q = 2;
      c.H = 3;
      c.mode = mode;
      c.cache = MlaCacheBuffer(MlaCacheGeometry::packed(layout, Fp8Format::e4m3fn, 3, 16));
      for (std::int64_t b = 0; b < 3; ++b)
        for (std::int32_t t = 0; t < 16; ++t) poison_mla_token(c.cache, b, t);
      auto nasty = test::nasty_invalid_indices(mode == IndexMode::physical ? 48 : 4 * 16);
      nasty.push_back(0);  // valid index, but beyond topk_length or through a bad block-table entry
      c.topk = static_cast<std::int32_t>(nasty.size());
      for (std::int64_t r = 0; r < c.T(); ++r) c.indices.insert(c.indices.end(), nasty.begin(), nasty.end());
      if (mode == IndexMode::logical) {
        c.max_blocks = 4;
        c.block_table = {-1, INT_MIN, 3, INT_MAX, 3, -7, INT_MAX, 3};
      } else {
        c.topk_length = {c.topk - 1, c.topk - 1};  // drops the trailing valid 0
      }
      c.q = test::random_bf16(c.T() * c.H * c.cache.geo.dim_qk(), 7);
      c.sink = {0.5f, kInf, -kInf};
      for (const auto& o : run_all(c)) {
        for (auto code : o.out) ASSERT_EQ(code, 0u) << to_string(layout) << " " << to_string(mode);
        for (float l : o.lse) ASSERT_EQ(l, kInf);
      }
    }
  }
}

}  // namespace
}  // namespace dsa
