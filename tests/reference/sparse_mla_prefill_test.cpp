// SPEC §5 sparse_mla_prefill and the materialized sparse_mla_attention: hand cases, max_logits,
// equivalence with decode, the staged workspace, validation, fast vs gold.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <climits>
#include <cmath>
#include <limits>

#include "dsa/error.hpp"
#include "reference/sparse_mla_cases.hpp"

namespace dsa {
namespace {

using test::DecodeCase;
using test::Outputs;

constexpr float kInf = std::numeric_limits<float>::infinity();

// The prefill view of a decode case with S_q = 1 and no extra cache: row b of decode is query
// row b of prefill, physical indices into the same cache, topk_length per row.
SparseMlaPrefillParams as_prefill(const DecodeCase& c) {
  SparseMlaPrefillParams p;
  p.q = c.q;
  p.S_q = c.B;
  p.H = c.H;
  p.kv = c.cache.view();
  p.indices = c.indices;
  p.topk = c.topk;
  p.topk_length = c.topk_length;
  p.attn_sink = c.sink;
  p.sm_scale = c.sm_scale;
  p.reader = c.reader;
  p.conventions = c.conventions;
  return p;
}

TEST(SparseMlaPrefill, HandCaseWithMaxLogitsAndLengths) {
  // Dense bf16 kv of 3 rows (D_qk 512, the MODEL1 shape): row t has k[0] = t + 1, k[500] = 2.
  // q row 0 = e_0 (sm_scale 1): slots {2, 0} give z = 3, 1 → max_logit 3, lse = ln(e³ + e).
  // q row 1: topk_length 1 keeps only slot 0 (index 1): z = 2, out = row 1, lse = max = 2.
  // q row 2: indices {3, -1} (3 = S_kv is out of range) → empty: lse +inf, max_logits −inf.
  std::vector<std::uint16_t> kv(3 * 512, 0);
  for (int t = 0; t < 3; ++t) {
    kv[static_cast<std::size_t>(t * 512)] = f32_to_bf16(static_cast<float>(t + 1));
    kv[static_cast<std::size_t>(t * 512 + 500)] = f32_to_bf16(2.0f);
  }
  std::vector<std::uint16_t> q(3 * 512, 0);
  for (int s = 0; s < 3; ++s) q[static_cast<std::size_t>(s * 512)] = f32_to_bf16(1.0f);
  const std::vector<std::int32_t> indices = {2, 0, 1, 2, 3, -1};
  const std::vector<std::int32_t> lengths = {2, 1, 2};
  SparseMlaPrefillParams p;
  p.q = q;
  p.S_q = 3;
  p.H = 1;
  p.kv = dense_bf16_kv(kv, 3, 512);
  p.indices = indices;
  p.topk = 2;
  p.topk_length = lengths;
  p.sm_scale = 1.0f;
  const double e = std::exp(1.0);
  for (int variant = 0; variant < 4; ++variant) {
    Outputs o(3, 1);
    if (variant == 0) sparse_mla_prefill_gold(p, o.view());
    if (variant == 1) sparse_mla_prefill_fast(p, o.view(), {MlaFastAlgo::fused, 1});
    if (variant == 2) sparse_mla_prefill_fast(p, o.view(), {MlaFastAlgo::staged, 2});
    if (variant == 3) sparse_mla_attention(p, o.view(), {MlaFastAlgo::fused, 1});
    SCOPED_TRACE(variant);
    EXPECT_EQ(o.max_logits[0], 3.0f);
    EXPECT_NEAR(o.lse[0], std::log(e * e * e + e), 4e-7);
    const double p3 = e * e / (e * e + 1);  // weight of z = 3
    EXPECT_NEAR(bf16_to_f32(o.out[0]), p3 * 3 + (1 - p3) * 1, 0x1p-8 * 3);
    EXPECT_EQ(bf16_to_f32(o.out[500]), 2.0f);
    EXPECT_EQ(o.max_logits[1], 2.0f);
    EXPECT_EQ(o.lse[1], 2.0f);
    EXPECT_EQ(bf16_to_f32(o.out[512]), 2.0f);
    EXPECT_EQ(o.lse[2], kInf);
    EXPECT_EQ(o.max_logits[2], -kInf);
    for (int d = 0; d < 512; ++d) ASSERT_EQ(o.out[static_cast<std::size_t>(1024 + d)], 0u);
  }
}

// Prefill is decode with B = S_q rows of one query each, physical indices, no extra cache.
RC_GTEST_PROP(SparseMlaPrefill, EqualsDecodeWithOneQueryPerSequence, ()) {
  auto spec = *test::gen_case_spec(8, 64);
  spec.S_q = 1;
  spec.mode = IndexMode::physical;
  spec.extra.reset();
  const DecodeCase c = test::build_case(spec);
  Outputs a(c.T(), c.H), b(c.T(), c.H);
  sparse_mla_decode_gold(c.params(), a.view());
  sparse_mla_prefill_gold(as_prefill(c), b.view());
  RC_ASSERT(test::first_difference(a, b) == "");
  for (const MlaFastAlgo algo : {MlaFastAlgo::fused, MlaFastAlgo::staged}) {
    Outputs x(c.T(), c.H), y(c.T(), c.H);
    sparse_mla_decode_fast(c.params(), x.view(), {algo, 3});
    sparse_mla_prefill_fast(as_prefill(c), y.view(), {algo, 3});
    RC_ASSERT(test::first_difference(x, y) == "");
  }
}

RC_GTEST_PROP(SparseMlaPrefill, FastIsWithinTheInterimBoundOfGold, ()) {
  auto spec = *test::gen_case_spec(16, 128);
  spec.S_q = 1;
  spec.mode = IndexMode::physical;
  spec.extra.reset();
  DecodeCase c = test::build_case(spec);
  const int ns = *rc::gen::inRange(1, 6);
  const SparseMlaPrefillParams p = as_prefill(c);
  SparseMlaGoldStats stats;
  const SparseMlaGold gold = sparse_mla_prefill_gold(p, &stats);
  Outputs fast(c.T(), c.H);
  sparse_mla_prefill_fast(p, fast.view(), {MlaFastAlgo::fused, ns});
  const std::string failure =
      test::check_against_gold(fast, gold, sparse_mla_interim_bound(gold, stats, c.conventions, ns));
  if (!failure.empty()) RC_FAIL(failure);
}

// The staged workspace holds each valid slot's operands (reader, then bf16) at r·L + j, −1 for
// invalid slots; attention over it equals fused attention over the paged cache bit for bit.
RC_GTEST_PROP(SparseMlaPrefill, StagedWorkspaceIsTheMaterializedForm, ()) {
  auto spec = *test::gen_case_spec(8, 64);
  spec.reader.operand = OperandAs::bf16;
  const DecodeCase c = test::build_case(spec);
  const MlaStagedKv ws = sparse_mla_stage(c.params());
  const std::int32_t L = c.topk + c.extra_topk;
  RC_ASSERT(ws.slots == L);
  RC_ASSERT(static_cast<std::int64_t>(ws.indices.size()) == c.T() * L);
  std::vector<float> token(static_cast<std::size_t>(c.cache.geo.dim_qk()));
  for (std::int64_t r = 0; r < c.T(); ++r)
    for (std::int32_t j = 0; j < L; ++j) {
      const std::int32_t idx = ws.indices[static_cast<std::size_t>(r * L + j)];
      RC_ASSERT(idx == -1 || idx == r * L + j);
    }
  SparseMlaPrefillParams a;
  a.q = c.q;
  a.S_q = c.T();
  a.H = c.H;
  a.kv = ws.kv();
  a.indices = ws.indices;
  a.topk = L;
  a.attn_sink = c.sink;
  a.conventions = c.conventions;
  Outputs x(c.T(), c.H), y(c.T(), c.H);
  sparse_mla_attention(a, x.view(), {MlaFastAlgo::fused, 1});
  sparse_mla_decode_fast(c.params(), y.view(), {MlaFastAlgo::fused, 1});
  RC_ASSERT(test::first_difference(x, y) == "");
}

TEST(SparseMlaPrefill, ValidationNamesTheArgument) {
  std::vector<std::uint16_t> kv(4 * 576, 0), q(2 * 576, 0);
  std::vector<std::int32_t> indices = {0, 1, 2, 3};
  SparseMlaPrefillParams p;
  p.q = q;
  p.S_q = 2;
  p.H = 1;
  p.kv = dense_bf16_kv(kv, 4, 576);
  p.indices = indices;
  p.topk = 2;
  Outputs o(2, 1);
  EXPECT_NO_THROW(sparse_mla_prefill_fast(p, o.view()));
  auto expect = [&](SparseMlaPrefillParams bad, const std::string& argument) {
    Outputs out(2, 1);
    const Outputs before = out;
    try {
      sparse_mla_prefill_fast(bad, out.view());
      ADD_FAILURE() << "no error for " << argument;
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
    }
    EXPECT_TRUE(out.same_bits(before));
  };
  {
    auto bad = p;
    bad.topk = 3;
    expect(bad, "indices");
  }
  {
    auto bad = p;
    std::vector<std::int32_t> len = {1};
    bad.topk_length = len;
    expect(bad, "topk_length");
  }
  {
    auto bad = p;
    bad.kv.geo.page_tokens = 0;
    expect(bad, "kv.page_tokens");
  }
  {
    auto bad = p;
    bad.H = 2;
    expect(bad, "q");
  }
  // The materialized form takes bf16 rows only.
  MlaCacheBuffer v32(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 1, 4));
  auto paged = p;
  paged.kv = v32.view();
  EXPECT_NO_THROW(sparse_mla_prefill_fast(paged, o.view()));
  EXPECT_THROW(sparse_mla_attention(paged, o.view()), LayoutMismatch);
}

}  // namespace
}  // namespace dsa
