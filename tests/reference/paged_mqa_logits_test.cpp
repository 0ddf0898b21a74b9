// SPEC §6.2 paged_mqa_logits: hand-derived cases, validation, fast vs gold within the interim
// bound, and the bit-exact relations of §11 (layouts, block relabelling, page size, reruns).
#include "dsa/paged_mqa_logits.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <omp.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "dsa/error.hpp"
#include "dsa/quantize.hpp"
#include "reference/indexer_cases.hpp"

namespace {

using namespace idx_test;
constexpr float kInf = std::numeric_limits<float>::infinity();

using Impl = void (*)(const dsa::PagedMqaLogitsParams&);
const Impl kImpls[] = {dsa::gold::paged_mqa_logits, dsa::fast::paged_mqa_logits};
const char* const kImplNames[] = {"gold", "fast"};

// A hand-built problem: D = 32, standard layout, e4m3fn, block table b·max_blocks + j → block
// b·max_blocks + j. Values given to token()/query() must be fp8-exact.
struct Tiny {
  dsa::PagedMqaLogitsParams p;
  std::vector<std::int32_t> ctx, table;
  std::vector<std::uint8_t> q;
  std::vector<float> w, logits;
  dsa::IndexKCacheBuffer cache;

  Tiny(std::int64_t batch, std::int64_t next_n, std::int64_t heads, std::int32_t page, ContextLens kind,
       std::vector<std::int32_t> context_lens, std::int64_t max_ctx, std::int64_t row_stride, std::int64_t max_blocks)
      : ctx(std::move(context_lens)),
        cache(dsa::IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, batch * max_blocks, page, 32)) {
    table.resize(static_cast<std::size_t>(batch * max_blocks));
    for (std::size_t j = 0; j < table.size(); ++j) table[j] = static_cast<std::int32_t>(j);
    q.assign(static_cast<std::size_t>(batch * next_n * heads * 32), 0);
    w.assign(static_cast<std::size_t>(batch * next_n * heads), 1.0f);
    logits.assign(static_cast<std::size_t>(batch * next_n * row_stride), sentinel());
    p.batch = batch;
    p.next_n = next_n;
    p.num_heads = heads;
    p.head_dim = 32;
    p.q_fp8 = Fp8Format::e4m3fn;
    p.context_lens_kind = kind;
    p.max_blocks = max_blocks;
    p.max_ctx = max_ctx;
    p.logits_row_stride = row_stride;
  }
  void token(std::int64_t b, std::int64_t pos, const std::vector<float>& values, float scale) {
    const auto P = cache.geo.page_tokens;
    put_token(cache, table[static_cast<std::size_t>(b * p.max_blocks + pos / P)], pos % P, values, scale);
  }
  void query(std::int64_t row, std::int64_t h, const std::vector<float>& values) {
    for (std::size_t d = 0; d < values.size(); ++d)
      q[static_cast<std::size_t>((row * p.num_heads + h) * 32) + d] = dsa::f32_to_fp8(values[d], Fp8Format::e4m3fn);
  }
  std::vector<float> run(Impl impl) {
    std::fill(logits.begin(), logits.end(), sentinel());
    p.q = q;
    p.weights = w;
    p.context_lens = ctx;
    p.block_table = table;
    p.cache = cache.view();
    p.logits = logits;
    impl(p);
    return logits;
  }
};

// ---------------------------------------------------------------------------------------------
// Hand-derived cases; both implementations must give exactly these numbers (every intermediate
// is a short dyadic rational, exact in fp32).

TEST(PagedMqaLogits, OneHeadOneToken) {
  // q = [1, 0.5], k = [2, −3], s = 0.25, w = 2:
  // dot = 1·2 + 0.5·(−3) = 0.5; relu = 0.5; head sum = 2·0.5 = 1; logit = 0.25·1 = 0.25.
  Tiny c(1, 1, 1, 1, ContextLens::per_sequence, {1}, 1, 1, 1);
  c.token(0, 0, {2, -3}, 0.25f);
  c.query(0, 0, {1, 0.5f});
  c.w = {2};
  for (int i = 0; i < 2; ++i) EXPECT_EQ(c.run(kImpls[i])[0], 0.25f) << kImplNames[i];
}

TEST(PagedMqaLogits, ReluCutsNegativeDot) {
  // Two heads, s = 2, w = [3, 0.5].
  // t = 0, k = [−2, 0.5]: head 0 q = [1, 1] → dot −1.5 → relu 0; head 1 q = [−1, 2] → dot 3.
  //   logit = 2·(3·0 + 0.5·3) = 3   (without the relu: 2·(3·(−1.5) + 1.5) = −6).
  // t = 1, k = [−1, −1]: dots −2 and −1, both cut: logit = 2·0 = 0.
  Tiny c(1, 1, 2, 2, ContextLens::per_sequence, {2}, 2, 2, 1);
  c.token(0, 0, {-2, 0.5f}, 2.0f);
  c.token(0, 1, {-1, -1}, 2.0f);
  c.query(0, 0, {1, 1});
  c.query(0, 1, {-1, 2});
  c.w = {3, 0.5f};
  for (int i = 0; i < 2; ++i) {
    const auto out = c.run(kImpls[i]);
    EXPECT_EQ(out[0], 3.0f) << kImplNames[i];
    EXPECT_EQ(out[1], 0.0f) << kImplNames[i];
  }
}

// k[t] = [t + 1], s = 1, q = [1], w = 1 ⇒ logit(t) = t + 1 wherever visible.
Tiny counting_case(std::int64_t batch, std::int64_t next_n, std::int32_t page, ContextLens kind,
                   std::vector<std::int32_t> ctx, std::int64_t max_ctx, std::int64_t row_stride, std::int64_t tokens) {
  const std::int64_t max_blocks = (tokens + page - 1) / page;
  Tiny c(batch, next_n, 1, page, kind, std::move(ctx), max_ctx, row_stride, std::max<std::int64_t>(max_blocks, 1));
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < tokens; ++t) c.token(b, t, {static_cast<float>(t + 1)}, 1.0f);
  for (std::int64_t r = 0; r < batch * next_n; ++r) c.query(r, 0, {1});
  return c;
}

TEST(PagedMqaLogits, BoundaryRowSeesExactlyCtxMinusNPlusI) {
  // ctx = 6, N = 2, P = 4 (ctx not a multiple of the page), max_ctx = 8, row stride 10.
  // Row 0 sees t ≤ 6 − 2 + 0 = 4, so t = 4 is visible and t = 5 masked; row 1 sees t ≤ 5.
  // Positions 8, 9 lie past max_ctx and keep the sentinel.
  Tiny c = counting_case(1, 2, 4, ContextLens::per_sequence, {6}, 8, 10, 6);
  for (int i = 0; i < 2; ++i) {
    const auto out = c.run(kImpls[i]);
    const std::vector<float> row0 = {1, 2, 3, 4, 5, -kInf, -kInf, -kInf};
    const std::vector<float> row1 = {1, 2, 3, 4, 5, 6, -kInf, -kInf};
    for (int t = 0; t < 8; ++t) {
      EXPECT_EQ(out[static_cast<std::size_t>(t)], row0[static_cast<std::size_t>(t)]) << kImplNames[i] << " row 0 t " << t;
      EXPECT_EQ(out[static_cast<std::size_t>(10 + t)], row1[static_cast<std::size_t>(t)]) << kImplNames[i] << " row 1 t " << t;
    }
    for (int t : {8, 9, 18, 19}) EXPECT_TRUE(is_sentinel(out[static_cast<std::size_t>(t)])) << kImplNames[i] << " " << t;
  }
}

TEST(PagedMqaLogits, ContextZeroAndOneAndBelowNextN) {
  // B = 2, N = 2, ctx = {0, 1}, max_ctx = 3. Row (b, i) sees t ≤ ctx − 2 + i:
  // (0,0): t ≤ −2, (0,1): t ≤ −1, (1,0): t ≤ −1 — nothing; (1,1): t ≤ 0 — only t = 0, logit 1.
  Tiny c = counting_case(2, 2, 1, ContextLens::per_sequence, {0, 1}, 3, 3, 1);
  for (int i = 0; i < 2; ++i) {
    const auto out = c.run(kImpls[i]);
    for (int t = 0; t < 9; ++t) EXPECT_EQ(out[static_cast<std::size_t>(t)], -kInf) << kImplNames[i] << " " << t;
    EXPECT_EQ(out[9], 1.0f) << kImplNames[i];
    EXPECT_EQ(out[10], -kInf) << kImplNames[i];
    EXPECT_EQ(out[11], -kInf) << kImplNames[i];
  }
  // N = 1, ctx = {0, 1}: row 0 sees nothing, row 1 sees t = 0.
  Tiny d = counting_case(2, 1, 1, ContextLens::per_sequence, {0, 1}, 2, 2, 1);
  for (int i = 0; i < 2; ++i) {
    const auto out = d.run(kImpls[i]);
    EXPECT_EQ(out[0], -kInf);
    EXPECT_EQ(out[1], -kInf);
    EXPECT_EQ(out[2], 1.0f);
    EXPECT_EQ(out[3], -kInf);
  }
}

TEST(PagedMqaLogits, PerRowContextLengths) {
  // 2-D lengths [1][3] = {2, 0, 5}, P = 2, max_ctx = 5: row i sees t < ctx[i].
  Tiny c = counting_case(1, 3, 2, ContextLens::per_row, {2, 0, 5}, 5, 5, 5);
  for (int i = 0; i < 2; ++i) {
    const auto out = c.run(kImpls[i]);
    const std::vector<float> want = {1, 2, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, 1, 2, 3, 4, 5};
    for (std::size_t t = 0; t < want.size(); ++t) EXPECT_EQ(out[t], want[t]) << kImplNames[i] << " " << t;
  }
}

TEST(PagedMqaLogits, ContextBeyondMaxCtxIsClipped) {
  // ctx = 7 but max_ctx = 4: positions [0, 4) are written, nothing past them.
  Tiny c = counting_case(1, 1, 2, ContextLens::per_sequence, {7}, 4, 6, 8);
  for (int i = 0; i < 2; ++i) {
    const auto out = c.run(kImpls[i]);
    for (int t = 0; t < 4; ++t) EXPECT_EQ(out[static_cast<std::size_t>(t)], static_cast<float>(t + 1));
    EXPECT_TRUE(is_sentinel(out[4]) && is_sentinel(out[5]));
  }
}

TEST(PagedMqaLogits, KScaleModelsWithNegativeScale) {
  // q = [1], k = [2], w = 3, s = −0.5:
  //   after_head_sum: −0.5 · 3·relu(2) = −3
  //   per_head:       3·relu(−0.5·2) = 0
  //   on_k_bf16:      k' = bf16(2·(−0.5)) = −1, 3·relu(1·(−1)) = 0
  Tiny c(1, 1, 1, 1, ContextLens::per_sequence, {1}, 1, 1, 1);
  c.token(0, 0, {2}, -0.5f);
  c.query(0, 0, {1});
  c.w = {3};
  const std::pair<KScaleAt, float> want[] = {{KScaleAt::after_head_sum, -3.0f}, {KScaleAt::per_head, 0.0f}, {KScaleAt::on_k_bf16, 0.0f}};
  for (const auto& [at, v] : want) {
    c.p.k_scale_at = at;
    for (int i = 0; i < 2; ++i) EXPECT_EQ(c.run(kImpls[i])[0], v) << dsa::to_string(at) << " " << kImplNames[i];
  }
}

TEST(PagedMqaLogits, OnKBf16RoundsKTimesScaleToNearestEven) {
  // q = [1], k = [1], w = 1. bf16 has 7 fraction bits: its neighbours of 1 are 1 and 1 + 2^−7.
  //   s = 1 + 2^−10: bf16(s) = 1 (below half an ulp)           → on_k_bf16 1, others 1 + 2^−10
  //   s = 1 + 2^−8: exactly half an ulp, tie to even (1)        → on_k_bf16 1
  //   s = 1 + 3·2^−8: tie between 1 + 2^−7 (odd) and 1 + 2^−6 (even) → on_k_bf16 1 + 2^−6
  Tiny c(1, 1, 1, 1, ContextLens::per_sequence, {1}, 1, 1, 1);
  c.query(0, 0, {1});
  const std::pair<float, float> cases[] = {{1.0f + 0x1p-10f, 1.0f}, {1.0f + 0x1p-8f, 1.0f}, {1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-6f}};
  for (const auto& [s, bf] : cases) {
    c.token(0, 0, {1}, s);
    for (int i = 0; i < 2; ++i) {
      c.p.k_scale_at = KScaleAt::on_k_bf16;
      EXPECT_EQ(c.run(kImpls[i])[0], bf) << s << " " << kImplNames[i];
      c.p.k_scale_at = KScaleAt::after_head_sum;
      EXPECT_EQ(c.run(kImpls[i])[0], s) << s << " " << kImplNames[i];
      c.p.k_scale_at = KScaleAt::per_head;
      EXPECT_EQ(c.run(kImpls[i])[0], s) << s << " " << kImplNames[i];
    }
  }
}

TEST(PagedMqaLogits, VisibleNaNPropagates) {
  // A NaN code at a visible position gives a NaN logit there (relu does not hide it); the other
  // position is unaffected.
  Tiny c = counting_case(1, 1, 2, ContextLens::per_sequence, {2}, 2, 2, 2);
  auto page = c.cache.bytes.data();
  page[dsa::layout::IndexK::value_offset(IndexKLayout::standard, 32, 1, 0)] = dsa::fp8_nan_code(Fp8Format::e4m3fn);
  for (int i = 0; i < 2; ++i) {
    const auto out = c.run(kImpls[i]);
    EXPECT_EQ(out[0], 1.0f);
    EXPECT_TRUE(std::isnan(out[1]) && !is_sentinel(out[1])) << kImplNames[i];
  }
}

// ---------------------------------------------------------------------------------------------
// Validation (SPEC §8): the error names the argument and the rule; nothing is written.

PagedCase small_case(IndexKLayout layout) {
  PagedShape s;
  s.batch = 2;
  s.next_n = 2;
  s.heads = 4;
  s.dim = 64;
  s.page = 16;
  s.layout = layout;
  s.ctx = {40, 17};
  s.seed = 7;
  return make_paged_case(s);
}

template <class E = dsa::InvalidArgument>
std::string expect_rejected(PagedCase& c, const dsa::PagedMqaLogitsParams& p) {
  for (int i = 0; i < 2; ++i) {
    c.fill_sentinel();
    try {
      kImpls[i](p);
      ADD_FAILURE() << kImplNames[i] << " accepted invalid parameters";
    } catch (const E& e) {
      for (float x : c.logits) EXPECT_TRUE(is_sentinel(x)) << "written before the error: " << e.what();
      if (i == 1) return e.what();
    }
  }
  return {};
}

TEST(PagedMqaLogits, LayoutMismatchNamesBothLayouts) {
  for (auto [cache_layout, reader] : {std::pair{IndexKLayout::preshuffle, IndexKLayout::standard},
                                      std::pair{IndexKLayout::standard, IndexKLayout::preshuffle}}) {
    PagedCase c = small_case(cache_layout);
    auto p = c.params();
    p.reader_layout = reader;
    const std::string what = expect_rejected<dsa::LayoutMismatch>(c, p);
    EXPECT_NE(what.find(std::string("'") + dsa::to_string(cache_layout) + "'"), std::string::npos) << what;
    EXPECT_NE(what.find(std::string("'") + dsa::to_string(reader) + "'"), std::string::npos) << what;
    EXPECT_NE(what.find("cache"), std::string::npos) << what;
  }
}

TEST(PagedMqaLogits, NeededBlockTableEntryOutOfRangeIsAnError) {
  for (std::int32_t bad : {-1, 1 << 30}) {
    PagedCase c = small_case(IndexKLayout::standard);
    c.block_table[static_cast<std::size_t>(1 * c.max_blocks + 1)] = bad;  // sequence 1 (ctx 17) needs blocks 0, 1
    const std::string what = expect_rejected(c, c.params());
    EXPECT_NE(what.find("block_table: entry [1][1]"), std::string::npos) << what;
  }
}

TEST(PagedMqaLogits, UnneededBlockTableEntriesAreNotRead) {
  PagedCase c = small_case(IndexKLayout::standard);
  ASSERT_GE(c.max_blocks, 3);
  c.block_table[static_cast<std::size_t>(1 * c.max_blocks + 2)] = std::numeric_limits<std::int32_t>::min();
  for (int i = 0; i < 2; ++i) EXPECT_NO_THROW(kImpls[i](c.params()));
}

TEST(PagedMqaLogits, ShapeAndRangeErrors) {
  PagedCase c = small_case(IndexKLayout::standard);
  auto check = [&](auto mutate, const char* needle) {
    auto p = c.params();
    mutate(p);
    const std::string what = expect_rejected(c, p);
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  };
  std::vector<std::int32_t> negative = {40, -1};
  check([&](auto& p) { p.context_lens = negative; }, "context_lens: entry 1 is -1");
  check([&](auto& p) { p.max_blocks = 2; p.block_table = std::span(c.block_table).first(4); }, "max_blocks is 2");
  check([&](auto& p) { p.logits_row_stride = p.max_ctx - 1; }, "logits_row_stride");
  check([&](auto& p) { p.head_dim = 32; }, "head_dim");
  check([&](auto& p) { p.q = p.q.first(p.q.size() - 1); }, "q:");
  check([&](auto& p) { p.weights = p.weights.first(3); }, "weights:");
  check([&](auto& p) { p.context_lens_kind = ContextLens::per_row; }, "context_lens:");
  check([&](auto& p) { p.logits = p.logits.first(p.logits.size() - 1); }, "logits:");
  check([&](auto& p) { p.next_n = 0; }, "next_n");
  // Hostile extents fail by name, without signed overflow (UBSan build).
  constexpr std::int64_t kHuge = std::int64_t{1} << 40;
  check([&](auto& p) { p.batch = kHuge; p.next_n = kHuge; }, "next_n: B·N");
  check([&](auto& p) { p.num_heads = kHuge; p.head_dim = kHuge; }, "head_dim");
  check([&](auto& p) { p.num_heads = kHuge; }, "q: holds");
  check([&](auto& p) { p.max_blocks = std::numeric_limits<std::int64_t>::max() / 2; }, "block_table: holds");
  check([&](auto& p) { p.logits_row_stride = std::numeric_limits<std::int64_t>::max() / 2; }, "exceeds int64");
}

// ---------------------------------------------------------------------------------------------
// Properties over random shapes.

rc::Gen<PagedShape> gen_shape(bool preshuffle_able) {
  return rc::gen::exec([preshuffle_able] {
    PagedShape s;
    s.batch = *rc::gen::inRange<std::int64_t>(1, 4);
    s.next_n = *rc::gen::inRange<std::int64_t>(1, 5);
    s.heads = *rc::gen::element<std::int64_t>(1, 2, 3, 7, 16, 33, 64);
    s.dim = *rc::gen::element<std::int64_t>(32, 64, 128);
    s.layout = preshuffle_able ? IndexKLayout::standard
                               : *rc::gen::element(IndexKLayout::standard, IndexKLayout::preshuffle);
    s.page = (preshuffle_able || s.layout == IndexKLayout::preshuffle)
                 ? *rc::gen::element<std::int32_t>(16, 32, 64, 80)
                 : *rc::gen::element<std::int32_t>(1, 2, 16, 53, 64, 69);
    s.fp8 = *rc::gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz);
    s.kind = *rc::gen::element(ContextLens::per_sequence, ContextLens::per_row);
    s.at = *rc::gen::element(KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16);
    const auto n_ctx = static_cast<std::size_t>(s.kind == ContextLens::per_row ? s.batch * s.next_n : s.batch);
    s.ctx = *rc::gen::container<std::vector<std::int32_t>>(
        n_ctx, rc::gen::oneOf(rc::gen::inRange<std::int32_t>(0, 5), rc::gen::inRange<std::int32_t>(0, 700)));
    s.max_ctx_slack = *rc::gen::element<std::int64_t>(0, 0, 1, 70);
    s.stride_slack = *rc::gen::element<std::int64_t>(0, 3, 256);
    s.alias = *rc::gen::arbitrary<bool>();
    s.ue8m0_scales = *rc::gen::arbitrary<bool>();
    s.seed = *rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>());
    return s;
  });
}

std::vector<float> run(Impl impl, PagedCase& c, const dsa::PagedMqaLogitsParams& p) {
  c.fill_sentinel();
  impl(p);
  return c.logits;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

RC_GTEST_PROP(PagedMqaLogits, FastWithinBoundOfGoldAndContractHolds, ()) {
  const PagedShape s = *gen_shape(false);
  PagedCase c = make_paged_case(s);
  const auto p = c.params();
  const auto gold = run(dsa::gold::paged_mqa_logits, c, p);
  const auto fast = run(dsa::fast::paged_mqa_logits, c, p);
  RC_ASSERT(bit_identical(fast, run(dsa::fast::paged_mqa_logits, c, p)));  // determinism
  const auto ranges = dsa::visible_ranges(p);
  for (std::int64_t r = 0; r < p.rows(); ++r) {
    for (std::int64_t t = 0; t < c.row_stride; ++t) {
      const auto at = static_cast<std::size_t>(r * c.row_stride + t);
      if (t >= c.max_ctx) {
        RC_ASSERT(is_sentinel(gold[at]));
        RC_ASSERT(is_sentinel(fast[at]));
      } else if (!ranges[static_cast<std::size_t>(r)].contains(t)) {
        RC_ASSERT(gold[at] == -kInf);
        RC_ASSERT(fast[at] == -kInf);
      } else {
        RC_ASSERT(std::isfinite(gold[at]));  // poisoned tokens and pages never leak
        RC_ASSERT(std::isfinite(fast[at]));
        const double err = std::fabs(static_cast<double>(fast[at]) - gold[at]);
        const double bound = paged_logit_bound(c, r, t);
        if (!(err <= bound)) RC_FAIL(fmt::format("row {} t {}: fast {} gold {} err {} > bound {}", r, t, fast[at], gold[at], err, bound));
      }
    }
  }
}

// The fast path splits work over OpenMP threads but never an element's arithmetic.
TEST(PagedMqaLogits, ThreadCountDoesNotChangeAnyBit) {
  PagedShape s;
  s.batch = 3;
  s.next_n = 2;
  s.heads = 64;
  s.dim = 128;
  s.page = 64;
  s.ctx = {700, 300, 1};
  s.seed = 3;
  PagedCase c = make_paged_case(s);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = run(dsa::fast::paged_mqa_logits, c, c.params());
  omp_set_num_threads(std::max(threads, 3));
  const auto many = run(dsa::fast::paged_mqa_logits, c, c.params());
  omp_set_num_threads(threads);
  EXPECT_TRUE(bit_identical(one, many));
}

RC_GTEST_PROP(PagedMqaLogits, StandardAndPreshuffleGiveBitIdenticalLogits, ()) {
  const PagedShape s = *gen_shape(true);
  PagedCase c = make_paged_case(s);
  auto geo = c.cache.geo;
  geo.layout = IndexKLayout::preshuffle;
  dsa::IndexKCacheBuffer pre(geo);
  dsa::transcode_index_k(c.cache.view(), pre.span());
  auto p = c.params();
  auto p_pre = p;
  p_pre.cache = pre.view();
  p_pre.reader_layout = IndexKLayout::preshuffle;
  for (Impl impl : kImpls) RC_ASSERT(bit_identical(run(impl, c, p), run(impl, c, p_pre)));
}

RC_GTEST_PROP(PagedMqaLogits, RelabellingPhysicalBlocksIsBitExact, ()) {
  const PagedShape s = *gen_shape(false);
  PagedCase c = make_paged_case(s);
  const auto& g = c.cache.geo;
  // New pool: block π(j) holds old block j; needed table entries are rewritten through π.
  std::vector<std::int32_t> pi(static_cast<std::size_t>(g.num_blocks));
  std::iota(pi.begin(), pi.end(), 0);
  std::mt19937_64 rng(s.seed ^ 0x5eed);
  std::shuffle(pi.begin(), pi.end(), rng);
  dsa::IndexKCacheBuffer relabelled(g);
  for (std::int64_t j = 0; j < g.num_blocks; ++j)
    std::memcpy(relabelled.bytes.data() + pi[static_cast<std::size_t>(j)] * g.block_stride_bytes,
                c.cache.bytes.data() + j * g.block_stride_bytes, static_cast<std::size_t>(g.page_bytes()));
  std::vector<std::int32_t> table = c.block_table;
  for (auto& e : table)
    if (e >= 0 && e < g.num_blocks) e = pi[static_cast<std::size_t>(e)];
  auto p = c.params();
  auto q = p;
  q.cache = relabelled.view();
  q.block_table = table;
  for (Impl impl : kImpls) RC_ASSERT(bit_identical(run(impl, c, p), run(impl, c, q)));
}

RC_GTEST_PROP(PagedMqaLogits, PageSizeDoesNotChangeAnyBit, ()) {
  const PagedShape s = *gen_shape(false);
  PagedCase c = make_paged_case(s);
  // The same tokens re-paged with another page size and an identity block table.
  const std::int32_t page2 = *rc::gen::element<std::int32_t>(1, 16, 64, 69);
  const std::int64_t seq_tokens = c.max_blocks * s.page;
  const std::int64_t blocks2 = (seq_tokens + page2 - 1) / page2;
  dsa::IndexKCacheBuffer c2(dsa::IndexKGeometry::packed(IndexKLayout::standard, s.fp8, s.batch * blocks2, page2,
                                                        static_cast<std::int32_t>(s.dim)));
  std::vector<std::int32_t> table2(static_cast<std::size_t>(s.batch * blocks2));
  std::iota(table2.begin(), table2.end(), 0);
  const auto view = c.cache.view();
  std::vector<float> values(static_cast<std::size_t>(s.dim));
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t t = 0; t < seq_tokens; ++t) {
      const std::int32_t blk = c.block_table[static_cast<std::size_t>(b * c.max_blocks + t / s.page)];
      if (blk < 0 || blk >= c.cache.geo.num_blocks) continue;
      std::uint8_t* page = c2.bytes.data() + (b * blocks2 + t / page2) * c2.geo.block_stride_bytes;
      for (int d = 0; d < s.dim; ++d)
        page[dsa::layout::IndexK::standard_offset(static_cast<int>(s.dim), t % page2, d)] =
            dsa::read_index_k_code(view, blk, t % s.page, d);
      dsa::store_f32(page + dsa::layout::IndexK::scale_offset(page2, static_cast<int>(s.dim), t % page2),
                     dsa::read_index_k_scale(view, blk, t % s.page));
    }
  auto p = c.params();
  auto q = p;
  q.cache = c2.view();
  q.reader_layout = IndexKLayout::standard;
  q.block_table = table2;
  q.max_blocks = blocks2;
  RC_ASSERT(bit_identical(run(dsa::fast::paged_mqa_logits, c, p), run(dsa::fast::paged_mqa_logits, c, q)));
}

}  // namespace
