// SPEC §6.3 mqa_logits: hand-derived ranges, validation, fast vs gold within the interim bound,
// and agreement with paged_mqa_logits on the same (gathered) keys.
#include "dsa/mqa_logits.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "dsa/error.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/quantize.hpp"
#include "reference/indexer_cases.hpp"

namespace {

using namespace idx_test;
constexpr float kInf = std::numeric_limits<float>::infinity();

using Impl = void (*)(const dsa::MqaLogitsParams&);
const Impl kImpls[] = {dsa::gold::mqa_logits, dsa::fast::mqa_logits};
const char* const kImplNames[] = {"gold", "fast"};

// Owns the tensors of one mqa_logits call.
struct Case {
  std::int64_t S = 0, S_kv = 0, H = 1, D = 32, stride = 0;
  Fp8Format fp8 = Fp8Format::e4m3fn;
  KScaleAt at = KScaleAt::after_head_sum;
  std::vector<std::uint8_t> q, k;
  std::vector<float> scales, w, logits;
  std::vector<std::int32_t> ks, ke;

  dsa::MqaLogitsParams params() {
    dsa::MqaLogitsParams p;
    p.seq_len = S;
    p.seq_len_kv = S_kv;
    p.num_heads = H;
    p.head_dim = D;
    p.q = q;
    p.q_fp8 = fp8;
    p.k = k;
    p.k_fp8 = fp8;
    p.k_scales = scales;
    p.weights = w;
    p.ks = ks;
    p.ke = ke;
    p.k_scale_at = at;
    p.logits = logits;
    p.logits_row_stride = stride;
    return p;
  }
  std::vector<float> run(Impl impl, const dsa::MqaLogitsParams& p) {
    std::fill(logits.begin(), logits.end(), sentinel());
    impl(p);
    return logits;
  }
};

TEST(MqaLogits, RowSeesExactlyKsToKe) {
  // k[t] = [t + 1], s = 1, q = [1], w = 1 ⇒ logit(t) = t + 1 where visible.
  // S = 3, S_kv = 5, [ks, ke) = [0, 3), [2, 4), [5, 5) (empty); row stride 7.
  Case c;
  c.S = 3;
  c.S_kv = 5;
  c.stride = 7;
  c.q.assign(3 * 32, 0);
  for (int r = 0; r < 3; ++r) c.q[static_cast<std::size_t>(r * 32)] = dsa::f32_to_fp8(1.0f, c.fp8);
  c.k.assign(5 * 32, 0);
  for (int t = 0; t < 5; ++t) c.k[static_cast<std::size_t>(t * 32)] = dsa::f32_to_fp8(static_cast<float>(t + 1), c.fp8);
  c.scales.assign(5, 1.0f);
  c.w.assign(3, 1.0f);
  c.ks = {0, 2, 5};
  c.ke = {3, 4, 5};
  c.logits.resize(21);
  const std::vector<float> want = {1, 2, 3, -kInf, -kInf, -kInf, -kInf, 3, 4, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf};
  for (int i = 0; i < 2; ++i) {
    const auto out = c.run(kImpls[i], c.params());
    for (int r = 0; r < 3; ++r) {
      for (int t = 0; t < 5; ++t)
        EXPECT_EQ(out[static_cast<std::size_t>(r * 7 + t)], want[static_cast<std::size_t>(r * 5 + t)])
            << kImplNames[i] << " row " << r << " t " << t;
      EXPECT_TRUE(is_sentinel(out[static_cast<std::size_t>(r * 7 + 5)]) && is_sentinel(out[static_cast<std::size_t>(r * 7 + 6)]));
    }
  }
}

TEST(MqaLogits, RangeAndShapeErrorsNameTheArgument) {
  Case c;
  c.S = 2;
  c.S_kv = 4;
  c.stride = 4;
  c.q.assign(2 * 32, 0);
  c.k.assign(4 * 32, 0);
  c.scales.assign(4, 1.0f);
  c.w.assign(2, 1.0f);
  c.logits.resize(8);
  auto check = [&](std::vector<std::int32_t> ks, std::vector<std::int32_t> ke, const char* needle) {
    c.ks = std::move(ks);
    c.ke = std::move(ke);
    for (int i = 0; i < 2; ++i) {
      std::fill(c.logits.begin(), c.logits.end(), sentinel());
      try {
        kImpls[i](c.params());
        ADD_FAILURE() << "accepted " << needle;
      } catch (const dsa::InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        for (float x : c.logits) EXPECT_TRUE(is_sentinel(x));
      }
    }
  };
  check({0, -1}, {1, 2}, "ks: row 1");
  check({0, 3}, {1, 2}, "ks: row 1");
  check({0, 0}, {5, 2}, "ke: row 0");
  c.ks = {0, 0};
  c.ke = {1, 1};
  auto p = c.params();
  p.logits_row_stride = 3;
  EXPECT_THROW(dsa::fast::mqa_logits(p), dsa::InvalidArgument);
  p = c.params();
  p.k_scales = p.k_scales.first(3);
  EXPECT_THROW(dsa::gold::mqa_logits(p), dsa::InvalidArgument);
  // Hostile extents fail by name, without signed overflow (UBSan build).
  p = c.params();
  p.num_heads = std::int64_t{1} << 40;
  p.head_dim = std::int64_t{1} << 40;
  EXPECT_THROW(dsa::fast::mqa_logits(p), dsa::InvalidArgument);
  p = c.params();
  p.logits_row_stride = std::numeric_limits<std::int64_t>::max() / 2;
  EXPECT_THROW(dsa::fast::mqa_logits(p), dsa::InvalidArgument);
}

rc::Gen<Case> gen_case() {
  return rc::gen::exec([] {
    Case c;
    c.S = *rc::gen::inRange<std::int64_t>(0, 40);
    c.S_kv = *rc::gen::inRange<std::int64_t>(0, 700);
    c.H = *rc::gen::element<std::int64_t>(1, 2, 5, 16, 64);
    c.D = *rc::gen::element<std::int64_t>(32, 64, 128);
    c.fp8 = *rc::gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz);
    c.at = *rc::gen::element(KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16);
    c.stride = c.S_kv + *rc::gen::element<std::int64_t>(0, 1, 200);
    std::mt19937_64 rng(*rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>()));
    std::normal_distribution<float> normal;
    std::uniform_int_distribution<int> e(-6, 4);
    for (std::int64_t i = 0; i < c.S; ++i) {
      std::uniform_int_distribution<std::int32_t> pos(0, static_cast<std::int32_t>(c.S_kv));
      std::int32_t a = pos(rng), b = pos(rng);
      c.ks.push_back(std::min(a, b));
      c.ke.push_back(std::max(a, b));
    }
    c.q.resize(static_cast<std::size_t>(c.S * c.H * c.D));
    for (auto& x : c.q) x = dsa::f32_to_fp8(8.0f * normal(rng), c.fp8);
    c.k.resize(static_cast<std::size_t>(c.S_kv * c.D));
    for (auto& x : c.k) x = dsa::f32_to_fp8(8.0f * normal(rng), c.fp8);
    c.scales.resize(static_cast<std::size_t>(c.S_kv));
    for (auto& s : c.scales) s = std::ldexp(1.0f + std::fabs(normal(rng)), e(rng)) * (rng() % 8 == 0 ? -1.0f : 1.0f);
    c.w.resize(static_cast<std::size_t>(c.S * c.H));
    for (auto& w : c.w) w = std::ldexp(normal(rng), e(rng));
    c.logits.resize(static_cast<std::size_t>(std::max<std::int64_t>(c.S, 1) * c.stride));
    return c;
  });
}

RC_GTEST_PROP(MqaLogits, FastWithinBoundOfGoldAndContractHolds, ()) {
  Case c = *gen_case();
  const auto p = c.params();
  const auto gold = c.run(dsa::gold::mqa_logits, p);
  const auto fast = c.run(dsa::fast::mqa_logits, p);
  std::vector<float> qv(static_cast<std::size_t>(c.H * c.D)), k(static_cast<std::size_t>(c.D));
  for (std::int64_t r = 0; r < c.S; ++r) {
    for (std::int64_t j = 0; j < c.H * c.D; ++j)
      qv[static_cast<std::size_t>(j)] = dsa::fp8_to_f32(c.q[static_cast<std::size_t>(r * c.H * c.D + j)], c.fp8);
    for (std::int64_t t = 0; t < c.stride; ++t) {
      const auto at = static_cast<std::size_t>(r * c.stride + t);
      if (t >= c.S_kv) {
        RC_ASSERT(is_sentinel(gold[at]) && is_sentinel(fast[at]));
      } else if (t < c.ks[static_cast<std::size_t>(r)] || t >= c.ke[static_cast<std::size_t>(r)]) {
        RC_ASSERT(gold[at] == -kInf && fast[at] == -kInf);
      } else {
        const float s = c.scales[static_cast<std::size_t>(t)];
        for (std::int64_t d = 0; d < c.D; ++d) {
          const float v = dsa::fp8_to_f32(c.k[static_cast<std::size_t>(t * c.D + d)], c.fp8);
          k[static_cast<std::size_t>(d)] =
              c.at == KScaleAt::on_k_bf16 ? dsa::mqa_formula::k_operand<KScaleAt::on_k_bf16>(v, s) : v;
        }
        const double sigma = c.at == KScaleAt::on_k_bf16 ? 1.0 : std::fabs(static_cast<double>(s));
        const double bound = fast_logit_bound(qv.data(), c.w.data() + r * c.H, c.H, c.D, k.data(), sigma);
        const double err = std::fabs(static_cast<double>(fast[at]) - gold[at]);
        if (!(err <= bound)) RC_FAIL(fmt::format("row {} t {}: fast {} gold {} err {} > bound {}", r, t, fast[at], gold[at], err, bound));
      }
    }
  }
}

// The non-paged and the paged operation are one formula: the gold paged logits of a sequence
// equal, bit for bit, the gold mqa_logits of its gathered keys with [ks, ke) = [0, visible end).
RC_GTEST_PROP(MqaLogits, GoldEqualsPagedGoldOnGatheredKeys, ()) {
  PagedShape s;
  s.batch = *rc::gen::inRange<std::int64_t>(1, 3);
  s.next_n = *rc::gen::inRange<std::int64_t>(1, 4);
  s.heads = *rc::gen::element<std::int64_t>(1, 4, 64);
  s.dim = *rc::gen::element<std::int64_t>(32, 128);
  s.layout = *rc::gen::element(IndexKLayout::standard, IndexKLayout::preshuffle);
  s.page = *rc::gen::element<std::int32_t>(16, 64);
  s.at = *rc::gen::element(KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16);
  s.ctx = *rc::gen::container<std::vector<std::int32_t>>(static_cast<std::size_t>(s.batch), rc::gen::inRange<std::int32_t>(0, 400));
  s.seed = *rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>());
  PagedCase pc = make_paged_case(s);
  pc.fill_sentinel();
  dsa::gold::paged_mqa_logits(pc.params());
  const auto ranges = dsa::visible_ranges(pc.params());

  for (std::int64_t b = 0; b < s.batch; ++b) {
    std::int64_t end = 0;
    for (std::int64_t i = 0; i < s.next_n; ++i) end = std::max(end, ranges[static_cast<std::size_t>(b * s.next_n + i)].end);
    Case c;
    c.S = s.next_n;
    c.S_kv = end;
    c.H = s.heads;
    c.D = s.dim;
    c.stride = std::max<std::int64_t>(end, 1);
    c.at = s.at;
    c.k.resize(static_cast<std::size_t>(end * s.dim));
    c.scales.resize(static_cast<std::size_t>(end));
    const std::int32_t len = static_cast<std::int32_t>(end);
    dsa::gather_index_k(pc.cache.view(), std::span(pc.block_table).subspan(static_cast<std::size_t>(b * pc.max_blocks)), 1,
                        pc.max_blocks, std::span(&len, 1), c.k, c.scales);
    const auto rows = static_cast<std::size_t>(s.next_n * s.heads * s.dim);
    c.q.assign(pc.q.begin() + static_cast<std::ptrdiff_t>(b * rows), pc.q.begin() + static_cast<std::ptrdiff_t>((b + 1) * rows));
    c.w.assign(pc.weights.begin() + b * s.next_n * s.heads, pc.weights.begin() + (b + 1) * s.next_n * s.heads);
    for (std::int64_t i = 0; i < s.next_n; ++i) {
      c.ks.push_back(0);
      c.ke.push_back(static_cast<std::int32_t>(ranges[static_cast<std::size_t>(b * s.next_n + i)].end));
    }
    c.logits.resize(static_cast<std::size_t>(c.S * c.stride));
    const auto out = c.run(dsa::gold::mqa_logits, c.params());
    for (std::int64_t i = 0; i < s.next_n && end > 0; ++i)
      RC_ASSERT(std::memcmp(out.data() + i * c.stride, pc.logits.data() + (b * s.next_n + i) * pc.row_stride,
                            static_cast<std::size_t>(end) * sizeof(float)) == 0);
  }
}

}  // namespace
