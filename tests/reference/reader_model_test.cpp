// SPEC §2.5 reader models: with power-of-two scales every model sees the same operands; with
// non-power-of-two fp32 scales (V32, ScalePolicy::fp32) they differ exactly as documented — bf16
// scale, bf16 product, e8m0_floor = 2^floor(log2 s) — derived here independently.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/quantize.hpp"
#include "dsa/reader_model.hpp"
#include "reference/independent_codecs.hpp"

namespace {

using dsa::Fp8Format;
using dsa::MlaCacheGeometry;
using dsa::MlaLayout;
using dsa::OperandAs;
using dsa::ProductAs;
using dsa::ReaderModel;
using dsa::ScaleAs;
using dsa::ScalePolicy;

const ReaderModel kModels[] = {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(), ReaderModel::flashmla_sm100(),
                               ReaderModel::exact_fp32()};
const char* kModelNames[] = {"staged_bf16", "flashmla_sm90", "flashmla_sm100", "exact_fp32"};

std::uint32_t bits(float x) { return indep::bits_of(x); }
float bf16(float x) { return static_cast<float>(indep::bf16_value(indep::bf16_encode(x, false))); }
float pow2_floor(float s) {  // 2^floor(log2 s) for s > 0, via frexp
  int e;
  std::frexp(static_cast<double>(s), &e);  // s = m·2^e, m ∈ [0.5, 1)
  return static_cast<float>(std::ldexp(1.0, e - 1));
}
// code × scale rounded once to fp32 (the double product of a 4-bit and a 24-bit significand is exact).
float product_f32(std::uint8_t code, Fp8Format f, float s) {
  return static_cast<float>(indep::fp8_value(code, f == Fp8Format::e4m3fnuz) * static_cast<double>(s));
}

// The operand a model sees, derived from the SPEC §2.5 description.
float expected_operand(std::uint8_t code, Fp8Format f, float s, const ReaderModel& m) {
  float scale = s;
  if (m.scale == ScaleAs::bf16) scale = bf16(s);
  if (m.scale == ScaleAs::e8m0_floor) scale = pow2_floor(s);
  float v = product_f32(code, f, scale);
  if (m.product == ProductAs::bf16) v = bf16(v);
  if (m.operand == OperandAs::bf16) v = bf16(v);
  return v;
}

TEST(Spec2_5_ReaderModels, NamedModelsAreTheDocumentedCombinations) {
  EXPECT_EQ(ReaderModel::staged_bf16(), (ReaderModel{ScaleAs::fp32, ProductAs::fp32, OperandAs::bf16}));
  EXPECT_EQ(ReaderModel::flashmla_sm90(), (ReaderModel{ScaleAs::bf16, ProductAs::bf16, OperandAs::bf16}));
  EXPECT_EQ(ReaderModel::flashmla_sm100(), (ReaderModel{ScaleAs::e8m0_floor, ProductAs::fp32, OperandAs::bf16}));
  EXPECT_EQ(ReaderModel::exact_fp32(), (ReaderModel{ScaleAs::fp32, ProductAs::fp32, OperandAs::fp32}));
  EXPECT_EQ(ReaderModel{}, ReaderModel::staged_bf16());
  EXPECT_FALSE(ReaderModel::staged_bf16() == ReaderModel::exact_fp32());
  EXPECT_STREQ(dsa::to_string(ScaleAs::fp32), "fp32");
  EXPECT_STREQ(dsa::to_string(ScaleAs::bf16), "bf16");
  EXPECT_STREQ(dsa::to_string(ScaleAs::e8m0_floor), "e8m0_floor");
  EXPECT_STREQ(dsa::to_string(ProductAs::bf16), "bf16");
  EXPECT_STREQ(dsa::to_string(ProductAs::fp32), "fp32");
  EXPECT_STREQ(dsa::to_string(OperandAs::bf16), "bf16");
  EXPECT_STREQ(dsa::to_string(OperandAs::fp32), "fp32");
}

TEST(Spec2_5_ReaderModels, EffectiveScaleKnownAnswers) {
  EXPECT_EQ(dsa::effective_scale(0.7f, ScaleAs::fp32), 0.7f);
  EXPECT_EQ(dsa::effective_scale(0.7f, ScaleAs::bf16), 0.69921875f);       // 0x3F33
  EXPECT_EQ(dsa::effective_scale(1.0f / 3, ScaleAs::bf16), 0.333984375f);  // 0x3EAB
  EXPECT_EQ(dsa::effective_scale(0.75f, ScaleAs::e8m0_floor), 0.5f);
  EXPECT_EQ(dsa::effective_scale(1.0f, ScaleAs::e8m0_floor), 1.0f);
  EXPECT_EQ(dsa::effective_scale(std::nextafter(1.0f, 0.0f), ScaleAs::e8m0_floor), 0.5f);
  EXPECT_EQ(dsa::effective_scale(29.0f / 448.0f, ScaleAs::e8m0_floor), 0.0625f);
  EXPECT_EQ(dsa::effective_scale(1e-4f, ScaleAs::e8m0_floor), std::ldexp(1.0f, -14));
  EXPECT_EQ(dsa::effective_scale(3e38f, ScaleAs::e8m0_floor), std::ldexp(1.0f, 127));
  // Powers of two pass through every model unchanged.
  for (int e = -126; e <= 127; ++e) {
    const float s = std::ldexp(1.0f, e);
    for (ScaleAs a : {ScaleAs::fp32, ScaleAs::bf16, ScaleAs::e8m0_floor}) EXPECT_EQ(dsa::effective_scale(s, a), s) << e;
  }
}

TEST(Spec2_5_ReaderModels, DequantOperandFollowsProductAndOperandPrecision) {
  // 1.5 × 1.005859375 = 1.5087890625: fp32 exact; bf16 → 1.5078125.
  const float s = 1.005859375f;
  for (auto [m, want] : {std::pair{ReaderModel{ScaleAs::fp32, ProductAs::fp32, OperandAs::fp32}, 1.5087890625f},
                         std::pair{ReaderModel{ScaleAs::fp32, ProductAs::bf16, OperandAs::fp32}, 1.5078125f},
                         std::pair{ReaderModel{ScaleAs::fp32, ProductAs::fp32, OperandAs::bf16}, 1.5078125f}}) {
    EXPECT_EQ(dsa::dequant_operand(0x3C, Fp8Format::e4m3fn, s, m), want);
  }
  EXPECT_EQ(dsa::bf16_operand(0x3F80), 1.0f);
}

// A hand-built V32 token whose tile-0 scale is 1 + 3·2^−9 = 1.005859375 (bf16 rounds it up to
// 1.0078125, e8m0_floor down to 1) with codes 1.0 (0x38) and 1.5 (0x3C) — where all four named
// models disagree.
TEST(Spec2_5_ReaderModels, NonPowerOfTwoScaleKnownAnswers) {
  dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 1, 1));
  buf.values[0] = 0x38;
  buf.values[1] = 0x3C;
  const float s = 1.005859375f;
  std::memcpy(buf.values.data() + 512, &s, 4);
  buf.values[528] = 0x80;  // RoPE dim 512 = bf16 0x3F80 = 1.0
  buf.values[529] = 0x3F;
  struct Want {
    float d0, d1;
  };
  // staged:  bf16(1.005859375) = 1.0078125, bf16(1.5087890625) = 1.5078125 (65.125 steps → 65)
  // sm90:    1.5 · 1.0078125 = 1.51171875 → 65.5 steps, tie → 66 → 1.515625
  // sm100:   scale 1 → 1.0, 1.5
  // exact:   1.005859375, 1.5087890625
  const Want want[] = {{1.0078125f, 1.5078125f}, {1.0078125f, 1.515625f}, {1.0f, 1.5f}, {1.005859375f, 1.5087890625f}};
  for (int i = 0; i < 4; ++i) {
    std::vector<float> out(576);
    dsa::read_mla_token(buf.view(), 0, 0, kModels[i], out.data());
    EXPECT_EQ(out[0], want[i].d0) << kModelNames[i];
    EXPECT_EQ(out[1], want[i].d1) << kModelNames[i];
    EXPECT_EQ(out[512], 1.0f) << kModelNames[i];
  }
}

std::vector<float> random_rows(std::uint64_t seed, int n, int D) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-10, 10);
  std::vector<float> x(static_cast<std::size_t>(n) * D);
  for (int r = 0; r < n; ++r) {
    for (int t0 = 0; t0 < D; t0 += 64) {
      const float mag = std::ldexp(1.0f, ex(rng)) * (rng() % 7 == 0 ? 0.0f : 1.0f);
      for (int d = t0; d < std::min(D, t0 + 64); ++d) x[static_cast<std::size_t>(r) * D + d] = nd(rng) * mag;
    }
  }
  return x;
}

RC_GTEST_PROP(Spec2_5_ReaderModelsProperty, PowerOfTwoScalesGiveIdenticalValuesInEveryModel, ()) {
  const MlaLayout l = *rc::gen::element(MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT);
  const Fp8Format f = *rc::gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz);
  const int P = *rc::gen::element(1, 3, 64);
  dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(l, f, 2, P));
  const int D = buf.geo.dim_qk();
  const int n = static_cast<int>(buf.geo.capacity_tokens());
  const auto x = random_rows(*rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>()), n, D);
  std::vector<std::int64_t> slots(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) slots[i] = i;
  dsa::quantize_kv(x, n, D, slots, buf.span(), {ScalePolicy::pow2_ceil, 0.0f});
  for (int i = 0; i < n; ++i) {
    std::vector<float> ref(static_cast<std::size_t>(D)), out(static_cast<std::size_t>(D));
    dsa::read_mla_token(buf.view(), i / P, i % P, ReaderModel::exact_fp32(), ref.data());
    for (const ReaderModel& m : kModels) {
      dsa::read_mla_token(buf.view(), i / P, i % P, m, out.data());
      for (int d = 0; d < D; ++d) RC_ASSERT(bits(out[d]) == bits(ref[d]));
    }
  }
}

RC_GTEST_PROP(Spec2_5_ReaderModelsProperty, Fp32ScalesDifferExactlyAsDocumented, ()) {
  const Fp8Format f = *rc::gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz);
  const int P = *rc::gen::element(1, 2, 64);
  dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::V32, f, 1, P));
  const int n = P;
  const auto x = random_rows(*rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>()), n, 576);
  std::vector<std::int64_t> slots(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) slots[i] = i;
  dsa::quantize_kv(x, n, 576, slots, buf.span(), {ScalePolicy::fp32, 0.0f});
  for (int t = 0; t < n; ++t) {
    // Stored scales and codes straight from the bytes (offsets from SPEC §2.1).
    const std::uint8_t* tok = buf.values.data() + 656 * t;
    float scales[4];
    std::memcpy(scales, tok + 512, 16);
    for (int i = 0; i < 4; ++i) {
      std::vector<float> out(576);
      dsa::read_mla_token(buf.view(), 0, t, kModels[i], out.data());
      for (int d = 0; d < 512; ++d) {
        const float want = expected_operand(tok[d], f, scales[d / 128], kModels[i]);
        if (bits(out[d]) != bits(want))
          RC_FAIL(std::string(kModelNames[i]) + " dim " + std::to_string(d) + ": got " + std::to_string(out[d]) +
                  " want " + std::to_string(want));
      }
      for (int d = 512; d < 576; ++d) {
        std::uint16_t c;
        std::memcpy(&c, tok + 528 + 2 * (d - 512), 2);
        RC_ASSERT(bits(out[d]) == bits(static_cast<float>(indep::bf16_value(c))));
      }
    }
  }
}

TEST(Spec2_5_ReaderModels, Fp32ScalesActuallySeparateTheModels) {
  // Guards the property above against passing vacuously: on ordinary data every pair of named
  // models disagrees somewhere.
  dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 1, 64));
  const auto x = random_rows(42, 64, 576);
  std::vector<std::int64_t> slots(64);
  for (int i = 0; i < 64; ++i) slots[i] = i;
  dsa::quantize_kv(x, 64, 576, slots, buf.span(), {ScalePolicy::fp32, 0.0f});
  std::vector<std::vector<float>> seen(4, std::vector<float>(64 * 576));
  for (int i = 0; i < 4; ++i)
    for (int t = 0; t < 64; ++t) dsa::read_mla_token(buf.view(), 0, t, kModels[i], seen[i].data() + 576 * t);
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j) {
      int differ = 0;
      for (std::size_t k = 0; k < seen[i].size(); ++k) differ += bits(seen[i][k]) != bits(seen[j][k]);
      EXPECT_GT(differ, 0) << kModelNames[i] << " vs " << kModelNames[j];
    }
}

}  // namespace
