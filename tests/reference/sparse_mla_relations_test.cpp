// SPEC §11 metamorphic relations for sparse MLA decode, over every implementation (gold, fused,
// staged, split). E = bit-exact, W = within the interim bound.
#include <gtest/gtest.h>
#include <omp.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <climits>
#include <limits>
#include <numeric>

#include "reference/sparse_mla_cases.hpp"

namespace dsa {
namespace {

using test::DecodeCase;
using test::Outputs;

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Impl {
  const char* name;
  bool gold;
  SparseMlaFastOptions options;
};
const Impl kImpls[] = {{"gold", true, {}},
                       {"fused", false, {MlaFastAlgo::fused, 1}},
                       {"staged", false, {MlaFastAlgo::staged, 1}},
                       {"split3", false, {MlaFastAlgo::fused, 3}},
                       {"split5-staged", false, {MlaFastAlgo::staged, 5}}};

Outputs run(const Impl& impl, const DecodeCase& c) {
  Outputs o(c.T(), c.H);
  if (impl.gold) sparse_mla_decode_gold(c.params(), o.view());
  else sparse_mla_decode_fast(c.params(), o.view(), impl.options);
  return o;
}

// Asserts that every implementation gives the same bits on a and b (single-pass ones only when
// `single_pass_only`: a relation that moves slots moves split chunk boundaries).
void assert_same_everywhere(const DecodeCase& a, const DecodeCase& b, bool single_pass_only = false) {
  for (const Impl& impl : kImpls) {
    if (single_pass_only && impl.options.num_splits > 1) continue;
    const std::string diff = test::first_difference(run(impl, a), run(impl, b));
    if (!diff.empty()) RC_FAIL(std::string(impl.name) + ": " + diff);
  }
}

// A random case whose operands are bf16 (so staged ≡ fused is also exact).
DecodeCase random_case(int max_h = 8, int max_topk = 64) {
  auto spec = *test::gen_case_spec(max_h, max_topk);
  spec.reader.operand = OperandAs::bf16;
  return test::build_case(spec);
}

// E: relabel physical blocks — permute the pool, rewrite the indices (physical) or the block
// tables (logical).
void relabel(DecodeCase& c, MlaCacheBuffer& cache, std::vector<std::int32_t>& indices, std::vector<std::int32_t>& table,
             std::uint64_t seed) {
  const auto& g = cache.geo;
  std::vector<std::int64_t> perm(static_cast<std::size_t>(g.num_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  MlaCacheBuffer moved(g);
  for (std::int64_t b = 0; b < g.num_blocks; ++b) {
    const std::int64_t to = perm[static_cast<std::size_t>(b)];
    std::copy_n(cache.values.begin() + b * g.block_stride_bytes, g.page_bytes(),
                moved.values.begin() + to * g.block_stride_bytes);
    std::copy_n(cache.scales.begin() + b * g.scale_block_stride_bytes, g.scale_page_bytes(),
                moved.scales.begin() + to * g.scale_block_stride_bytes);
  }
  cache = std::move(moved);
  if (c.mode == IndexMode::physical) {
    for (auto& i : indices)
      if (i >= 0 && i < g.capacity_tokens())
        i = static_cast<std::int32_t>(perm[static_cast<std::size_t>(i / g.page_tokens)] * g.page_tokens + i % g.page_tokens);
  } else {
    for (auto& e : table)
      if (e >= 0 && e < g.num_blocks) e = static_cast<std::int32_t>(perm[static_cast<std::size_t>(e)]);
  }
}

RC_GTEST_PROP(SparseMlaRelations, RelabelPhysicalBlocksIsExact, ()) {
  const DecodeCase a = random_case();
  DecodeCase b = a;
  relabel(b, b.cache, b.indices, b.block_table, *rc::gen::arbitrary<std::uint64_t>());
  if (b.extra_cache) relabel(b, *b.extra_cache, b.extra_indices, b.extra_block_table, 99);
  assert_same_everywhere(a, b);
}

// E: index values in slots beyond topk_length, or any invalid value replaced by another invalid
// value, change nothing anywhere.
RC_GTEST_PROP(SparseMlaRelations, IndicesBeyondLengthsAndInvalidValuesAreIgnored, ()) {
  const DecodeCase a = random_case();
  DecodeCase b = a;
  std::mt19937_64 rng(*rc::gen::arbitrary<std::uint64_t>());
  auto scramble = [&](std::vector<std::int32_t>& indices, std::int32_t topk, const std::vector<std::int32_t>& lengths,
                      const MlaCacheGeometry& g, std::int64_t max_blocks) {
    const std::int64_t range = b.mode == IndexMode::physical ? g.capacity_tokens() : max_blocks * g.page_tokens;
    const auto nasty = test::nasty_invalid_indices(range);
    for (std::int64_t r = 0; r < b.T(); ++r)
      for (std::int32_t j = 0; j < topk; ++j) {
        auto& idx = indices[static_cast<std::size_t>(r * topk + j)];
        const bool beyond = !lengths.empty() && j >= lengths[static_cast<std::size_t>(r / b.S_q)];
        const bool invalid_value = idx < 0 || idx >= range;
        if (beyond) idx = static_cast<std::int32_t>(rng());  // anything at all
        else if (invalid_value) idx = nasty[rng() % nasty.size()];
      }
  };
  scramble(b.indices, b.topk, b.topk_length, b.cache.geo, b.max_blocks);
  if (b.extra_cache) scramble(b.extra_indices, b.extra_topk, b.extra_topk_length, b.extra_cache->geo, b.extra_max_blocks);
  assert_same_everywhere(a, b);
}

// E: inserting invalid slots anywhere (a longer slot axis) changes nothing for gold and the
// single-pass paths (split chunks are cut on the slot axis, so they move).
RC_GTEST_PROP(SparseMlaRelations, InsertingInvalidSlotsIsExact, ()) {
  auto spec = *test::gen_case_spec(8, 48);
  spec.reader.operand = OperandAs::bf16;
  spec.primary.lengths = false;
  spec.extra.reset();
  const DecodeCase a = test::build_case(spec);
  DecodeCase b = a;
  const std::int32_t extra = *rc::gen::inRange(1, 20);
  std::mt19937_64 rng(*rc::gen::arbitrary<std::uint64_t>());
  const auto nasty = test::nasty_invalid_indices(a.mode == IndexMode::physical ? a.cache.geo.capacity_tokens()
                                                                              : a.max_blocks * a.cache.geo.page_tokens);
  b.topk = a.topk + extra;
  b.indices.clear();
  for (std::int64_t r = 0; r < a.T(); ++r) {
    std::vector<std::int32_t> row(a.indices.begin() + r * a.topk, a.indices.begin() + (r + 1) * a.topk);
    for (std::int32_t k = 0; k < extra; ++k)
      row.insert(row.begin() + static_cast<std::ptrdiff_t>(rng() % (row.size() + 1)), nasty[rng() % nasty.size()]);
    b.indices.insert(b.indices.end(), row.begin(), row.end());
  }
  assert_same_everywhere(a, b, /*single_pass_only=*/true);
}

// E: a row with a single valid slot returns that slot's value row (as the reader sees it) and
// lse = its logit (= max_logits, bit for bit).
RC_GTEST_PROP(SparseMlaRelations, SingleValidSlotReturnsItsValueRow, ()) {
  auto spec = *test::gen_case_spec(8, 32);
  spec.reader.operand = OperandAs::bf16;
  spec.sink = test::SinkKind::none;
  spec.conventions = MlaConventions::flashmla();
  spec.extra.reset();
  spec.mode = IndexMode::physical;
  spec.primary.lengths = false;
  spec.primary.num_blocks = std::max<std::int64_t>(spec.primary.num_blocks, 1);
  spec.primary.topk = std::max(spec.primary.topk, 1);
  DecodeCase c = test::build_case(spec);
  const std::int64_t capacity = c.cache.geo.capacity_tokens();
  std::mt19937_64 rng(spec.seed);
  std::vector<std::int32_t> token(static_cast<std::size_t>(c.T()));
  for (std::int64_t r = 0; r < c.T(); ++r) {
    token[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(rng() % capacity);
    for (std::int32_t j = 0; j < c.topk; ++j) c.indices[static_cast<std::size_t>(r * c.topk + j)] = -1;
    c.indices[static_cast<std::size_t>(r * c.topk + rng() % c.topk)] = token[static_cast<std::size_t>(r)];
  }
  std::vector<float> v(static_cast<std::size_t>(c.cache.geo.dim_qk()));
  for (const Impl& impl : kImpls) {
    const Outputs o = run(impl, c);
    for (std::int64_t r = 0; r < c.T(); ++r) {
      const std::int32_t t = token[static_cast<std::size_t>(r)];
      read_mla_token(c.cache.view(), t / c.cache.geo.page_tokens, t % c.cache.geo.page_tokens, c.reader, v.data());
      for (std::int32_t h = 0; h < c.H; ++h) {
        // Exact in value: a −0 in the value row comes back as +0, because every implementation
        // (and every GPU kernel) accumulates p·v onto a +0 accumulator and +0 + −0 = +0.
        for (int d = 0; d < 512; ++d)
          RC_ASSERT(bf16_to_f32(o.out[static_cast<std::size_t>((r * c.H + h) * 512 + d)]) ==
                    bf16_to_f32(f32_to_bf16(v[static_cast<std::size_t>(d)])));
        const std::size_t rh = static_cast<std::size_t>(r * c.H + h);
        RC_ASSERT(f32_bits(o.lse[rh]) == f32_bits(o.max_logits[rh]));
      }
    }
  }
}

// E: sink −inf ≡ no sink; sink +inf ⇒ out = 0 (lse unchanged: it excludes the sink).
RC_GTEST_PROP(SparseMlaRelations, InfiniteSinksAreExact, ()) {
  auto spec = *test::gen_case_spec(8, 64);
  spec.sink = test::SinkKind::none;
  spec.conventions.sink_in_lse = false;
  const DecodeCase none = test::build_case(spec);
  DecodeCase neg = none, pos = none;
  neg.sink.assign(static_cast<std::size_t>(none.H), -kInf);
  pos.sink.assign(static_cast<std::size_t>(none.H), kInf);
  for (const Impl& impl : kImpls) {
    const Outputs a = run(impl, none), b = run(impl, neg), c = run(impl, pos);
    RC_ASSERT(test::first_difference(a, b) == "");
    for (auto code : c.out) RC_ASSERT(code == 0u);
    RC_ASSERT(a.lse == c.lse || std::equal(a.lse.begin(), a.lse.end(), c.lse.begin(),
                                           [](float x, float y) { return f32_bits(x) == f32_bits(y); }));
  }
}

// E: determinism — the same call twice, and with 1 or all OpenMP threads, gives the same bits.
RC_GTEST_PROP(SparseMlaRelations, DeterministicAcrossRunsAndThreadCounts, ()) {
  const DecodeCase c = random_case(16, 128);
  const int threads = omp_get_max_threads();
  for (const Impl& impl : kImpls) {
    const Outputs a = run(impl, c), b = run(impl, c);
    omp_set_num_threads(1);
    const Outputs one = run(impl, c);
    omp_set_num_threads(threads);
    RC_ASSERT(test::first_difference(a, b) == "");
    RC_ASSERT(test::first_difference(a, one) == "");
  }
}

// The same at a size where every implementation runs an OpenMP team (random cases are mostly
// too small to), with an extra cache and splits.
TEST(SparseMlaRelations, DeterministicAcrossThreadCountsAtFullSize) {
  test::CaseSpec spec;
  spec.B = 2;
  spec.S_q = 2;
  spec.H = 128;
  spec.primary.num_blocks = 16;
  spec.primary.page_tokens = 64;
  spec.primary.topk = 512;
  spec.primary.lengths = true;
  test::CacheSpec extra;
  extra.num_blocks = 2;
  extra.page_tokens = 64;
  extra.topk = 64;
  spec.extra = extra;
  spec.sink = test::SinkKind::finite;
  spec.seed = 11;
  const DecodeCase c = test::build_case(spec);
  const int threads = omp_get_max_threads();
  for (const Impl& impl : kImpls) {
    const Outputs a = run(impl, c), b = run(impl, c);
    omp_set_num_threads(1);
    const Outputs one = run(impl, c);
    omp_set_num_threads(threads);
    EXPECT_EQ(test::first_difference(a, b), "") << impl.name;
    EXPECT_EQ(test::first_difference(a, one), "") << impl.name;
  }
}

// E under bf16 operands (the staged workspace is exact then): staged ≡ fused, for every split.
RC_GTEST_PROP(SparseMlaRelations, StagedEqualsFusedUnderBf16Operands, ()) {
  const DecodeCase c = random_case(16, 128);
  const int ns = *rc::gen::inRange(1, 9);
  Outputs a(c.T(), c.H), b(c.T(), c.H);
  sparse_mla_decode_fast(c.params(), a.view(), {MlaFastAlgo::fused, ns});
  sparse_mla_decode_fast(c.params(), b.view(), {MlaFastAlgo::staged, ns});
  RC_ASSERT(test::first_difference(a, b) == "");
}

// W: permuting the selected slots of each row stays within the bound of the unpermuted gold.
RC_GTEST_PROP(SparseMlaRelations, PermutingSlotsIsWithinBound, ()) {
  auto spec = *test::gen_case_spec(8, 96);
  spec.primary.lengths = false;
  spec.extra.reset();
  const DecodeCase a = test::build_case(spec);
  DecodeCase b = a;
  std::mt19937_64 rng(*rc::gen::arbitrary<std::uint64_t>());
  for (std::int64_t r = 0; r < b.T(); ++r)
    std::shuffle(b.indices.begin() + r * b.topk, b.indices.begin() + (r + 1) * b.topk, rng);
  SparseMlaGoldStats stats;
  const SparseMlaGold gold = sparse_mla_decode_gold(a.params(), &stats);
  for (const Impl& impl : kImpls) {
    if (impl.gold) continue;
    const Outputs o = run(impl, b);
    if (impl.options.algo == MlaFastAlgo::staged && a.reader.operand != OperandAs::bf16) continue;
    const std::string failure = test::check_against_gold(
        o, gold, sparse_mla_interim_bound(gold, stats, a.conventions, impl.options.num_splits));
    if (!failure.empty()) RC_FAIL(std::string(impl.name) + ": " + failure);
  }
}

// E: doubling a power of two. Every K operand ×2 (fp8 scales ×2 — the fp32 scale doubled, the
// ue8m0 code + 1 —, bf16 RoPE and BF16 rows ×2) and q ×1/2 keep every logit, so out doubles and
// lse / max_logits stay, bit for bit.
void double_token(MlaCacheBuffer& c, std::int64_t block, std::int32_t t) {
  const auto& g = c.geo;
  std::uint8_t* page = c.values.data() + block * g.block_stride_bytes;
  auto twice_bf16 = [](std::uint8_t* p) { store_u16(p, f32_to_bf16(2.0f * bf16_to_f32(load_u16(p)))); };
  switch (g.layout) {
    case MlaLayout::V32:
      for (int k = 0; k < layout::V32::num_scales; ++k)
        store_f32(page + layout::V32::scale_offset(t, k), 2.0f * load_f32(page + layout::V32::scale_offset(t, k)));
      for (int d = layout::V32::nope_dims; d < layout::V32::dim_qk; ++d) twice_bf16(page + layout::V32::dim_offset(t, d));
      break;
    case MlaLayout::MODEL1:
    case MlaLayout::MODEL1_SPLIT:
      for (int k = 0; k < layout::Model1::num_scales; ++k) {
        std::uint8_t& code = g.layout == MlaLayout::MODEL1
                                 ? page[layout::Model1::scale_offset(g.page_tokens, t, k)]
                                 : c.scales[static_cast<std::size_t>(block * g.scale_block_stride_bytes +
                                                                     layout::Model1Split::scale_offset(t, k))];
        ++code;
      }
      for (int d = layout::Model1::nope_dims; d < layout::Model1::dim_qk; ++d)
        twice_bf16(page + layout::Model1::dim_offset(t, d));
      break;
    case MlaLayout::BF16:
      for (int d = 0; d < g.bf16_dim_qk; ++d) twice_bf16(page + layout::Bf16::dim_offset(t, d, g.bf16_dim_qk));
      break;
  }
}

RC_GTEST_PROP(SparseMlaRelations, DoublingAPowerOfTwoScaleDoublesTheValues, ()) {
  const DecodeCase a = random_case(8, 64);
  DecodeCase b = a;
  auto double_all = [](MlaCacheBuffer& c) {
    for (std::int64_t blk = 0; blk < c.geo.num_blocks; ++blk)
      for (std::int32_t t = 0; t < c.geo.page_tokens; ++t) double_token(c, blk, t);
  };
  double_all(b.cache);
  if (b.extra_cache) double_all(*b.extra_cache);
  for (auto& code : b.q) {
    RC_PRE(((code >> 7) & 0xFF) > 1 || (code & 0x7FFF) == 0);  // halving stays exact (no subnormal)
    code = f32_to_bf16(0.5f * bf16_to_f32(code));
  }
  for (const Impl& impl : kImpls) {
    const Outputs x = run(impl, a), y = run(impl, b);
    for (std::size_t i = 0; i < x.out.size(); ++i)
      RC_ASSERT(bf16_to_f32(y.out[i]) == 2.0f * bf16_to_f32(x.out[i]));
    for (std::size_t i = 0; i < x.lse.size(); ++i) {
      RC_ASSERT(f32_bits(x.lse[i]) == f32_bits(y.lse[i]));
      RC_ASSERT(f32_bits(x.max_logits[i]) == f32_bits(y.max_logits[i]));
    }
  }
}

}  // namespace
}  // namespace dsa
