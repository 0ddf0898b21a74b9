// SPEC §2.4 and §6.1 writers: known answers (a chosen token → the exact bytes → back), round-trip
// properties over random geometries and slot mappings against an independent model of the
// writer, lossless index-K transcoding, gather as the inverse of the writer, and SPEC §8: every
// validation error names its argument and leaves the caller's bytes untouched.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/error.hpp"
#include "dsa/quantize.hpp"
#include "reference/independent_codecs.hpp"

namespace {

using dsa::Fp8Format;
using dsa::IndexKGeometry;
using dsa::IndexKLayout;
using dsa::MlaCacheGeometry;
using dsa::MlaLayout;
using dsa::ScalePolicy;

constexpr std::uint8_t kSentinel = 0xA5;

// ---------------------------------------------------------------------------------------------
// An independent model of the writers (SPEC §2.4, §6.1), built on independent_codecs.hpp.

bool fnuz(Fp8Format f) { return f == Fp8Format::e4m3fnuz; }
float format_max(Fp8Format f) { return fnuz(f) ? 240.0f : 448.0f; }

const indep::Fp8Table& table(Fp8Format f) {
  static const indep::Fp8Table fn = indep::make_fp8_table(false), uz = indep::make_fp8_table(true);
  return fnuz(f) ? uz : fn;
}

// Smallest power of two ≥ v > 0, from frexp.
float pow2_at_least(float v) {
  int e;
  const double m = std::frexp(static_cast<double>(v), &e);  // v = m·2^e, m ∈ [0.5, 1)
  return static_cast<float>(m == 0.5 ? static_cast<double>(v) : std::ldexp(1.0, e));
}

// SPEC §2.4: pow2_ceil s = 2^ceil(log2(max(amax/fmax, 1e-4))); fp32 s = amax/fmax, floored
// (1e-4) only where that is 0.
float expected_mla_scale(float amax, float fmax, ScalePolicy p) {
  const float q = amax / fmax;
  if (p == ScalePolicy::pow2_ceil) return pow2_at_least(std::max(q, 1e-4f));
  return q > 0 ? q : 1e-4f;
}

// SPEC §6.1: s = max(amax, 1e-4) / fmax, optionally rounded up to a power of two.
float expected_index_scale(float amax, float fmax, bool ue8m0) {
  const float s = std::max(amax, 1e-4f) / fmax;
  return ue8m0 ? pow2_at_least(s) : s;
}

std::uint8_t expected_code(float x, float s, Fp8Format f) { return indep::fp8_encode(x / s, table(f), true); }
float dequant(std::uint8_t code, float s, Fp8Format f) {
  return static_cast<float>(indep::fp8_value(code, fnuz(f)) * static_cast<double>(s));
}
float bf16_rounded(float x) { return static_cast<float>(indep::bf16_value(indep::bf16_encode(x, false))); }

struct MlaShape {
  int nope, tile, dim_qk;
};
MlaShape mla_shape(MlaLayout l, int bf16_dim) {
  switch (l) {
    case MlaLayout::V32: return {512, 128, 576};
    case MlaLayout::BF16: return {0, 1, bf16_dim};
    default: return {448, 64, 512};
  }
}

// The operands read_mla_token must return under ReaderModel::exact_fp32 and the stored scales.
struct ExpectedToken {
  std::vector<float> values, scales;
};
ExpectedToken expected_mla_token(const float* x, MlaLayout l, Fp8Format f, ScalePolicy p, float fmax_param,
                                 int bf16_dim) {
  const MlaShape sh = mla_shape(l, bf16_dim);
  const float fmax = fmax_param > 0 ? fmax_param : format_max(f);
  ExpectedToken e;
  e.values.resize(static_cast<std::size_t>(sh.dim_qk));
  for (int k = 0; k * sh.tile < sh.nope; ++k) {
    float amax = 0;
    for (int d = k * sh.tile; d < (k + 1) * sh.tile; ++d) amax = std::max(amax, std::fabs(x[d]));
    const float s = expected_mla_scale(amax, fmax, p);
    e.scales.push_back(s);
    for (int d = k * sh.tile; d < (k + 1) * sh.tile; ++d) e.values[d] = dequant(expected_code(x[d], s, f), s, f);
  }
  for (int d = sh.nope; d < sh.dim_qk; ++d) e.values[d] = bf16_rounded(x[d]);
  return e;
}

// Bytes a token owns, from the SPEC tables (not layouts.hpp): {tensor (0 values, 1 scales), first, count}.
struct Extent {
  int tensor;
  std::int64_t first, count;
};
std::vector<Extent> token_extents(const MlaCacheGeometry& g, std::int64_t block, std::int64_t t) {
  const std::int64_t base = block * g.block_stride_bytes;
  const std::int64_t P = g.page_tokens;
  switch (g.layout) {
    case MlaLayout::V32: return {{0, base + 656 * t, 656}};
    case MlaLayout::MODEL1: return {{0, base + 576 * t, 576}, {0, base + 576 * P + 8 * t, 8}};
    case MlaLayout::MODEL1_SPLIT: return {{0, base + 576 * t, 576}, {1, block * g.scale_block_stride_bytes + 8 * t, 8}};
    case MlaLayout::BF16: return {{0, base + 2LL * g.bf16_dim_qk * t, 2LL * g.bf16_dim_qk}};
  }
  return {};
}

std::vector<float> read_token(const dsa::MlaCacheBuffer& buf, std::int64_t block, std::int64_t t,
                              dsa::ReaderModel m = dsa::ReaderModel::exact_fp32()) {
  std::vector<float> out(static_cast<std::size_t>(buf.geo.dim_qk()), std::numeric_limits<float>::quiet_NaN());
  dsa::read_mla_token(buf.view(), block, t, m, out.data());
  return out;
}

std::uint32_t bits(float x) { return indep::bits_of(x); }

std::vector<std::uint8_t> f32_le(float v) {
  const std::uint32_t b = bits(v);
  return {static_cast<std::uint8_t>(b), static_cast<std::uint8_t>(b >> 8), static_cast<std::uint8_t>(b >> 16),
          static_cast<std::uint8_t>(b >> 24)};
}
void put(std::vector<std::uint8_t>& dst, std::size_t at, const std::vector<std::uint8_t>& bytes) {
  std::copy(bytes.begin(), bytes.end(), dst.begin() + static_cast<std::ptrdiff_t>(at));
}
std::vector<std::uint8_t> u16_le(std::uint16_t v) {
  return {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8)};
}

template <class F>
void expect_invalid(F&& f, const std::string& argument) {
  try {
    f();
    ADD_FAILURE() << "expected dsa::InvalidArgument(" << argument << "), nothing thrown";
  } catch (const dsa::InvalidArgument& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
    EXPECT_EQ(std::string(e.what()), e.argument() + ": " + e.rule());
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected dsa::InvalidArgument(" << argument << "), got " << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Known answers: one chosen V32 token.

// Tile 0 all zero; tile 1 amax 336; tile 2 amax 28 (= 448·2^−4, an exact power of two ratio);
// tile 3 amax 29; RoPE with two bf16 ties.
std::vector<float> v32_token() {
  std::vector<float> x(576, 0.0f);
  x[128] = 336.0f;
  x[129] = -336.0f;
  x[130] = 1.0f;
  x[256] = 28.0f;
  x[257] = 1.0f;
  x[258] = -0.01f;
  x[384] = 29.0f;
  x[400] = -3.0f;
  x[512] = 1.0f;
  x[513] = -2.5f;
  x[514] = indep::float_of(0x3F808000u);  // bf16 tie → 0x3F80 (even)
  x[515] = indep::float_of(0x3F818000u);  // bf16 tie → 0x3F82 (even)
  x[575] = 3.0f;
  return x;
}

std::vector<std::uint8_t> v32_rope_bytes() {
  std::vector<std::uint8_t> b(128, 0);
  put(b, 0, u16_le(0x3F80));
  put(b, 2, u16_le(0xC020));
  put(b, 4, u16_le(0x3F80));
  put(b, 6, u16_le(0x3F82));
  put(b, 126, u16_le(0x4040));
  return b;
}

TEST(Spec2_4_QuantizeKv, V32Pow2CeilKnownBytes) {
  auto g = MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 2, 2);
  dsa::MlaCacheBuffer buf(g);
  const std::vector<float> x = v32_token();
  const std::vector<std::int64_t> slots = {3};  // block 1, t 1 → byte 1312 + 656
  dsa::quantize_kv(x, 1, 576, slots, buf.span());
  std::vector<std::uint8_t> want(656, 0);
  // Tile 0: all zero → scale 2^−13, codes 0.
  put(want, 512, {0x00, 0x00, 0x00, 0x39});
  // Tile 1: amax 336 → 336/448 = 0.75 → scale 1; 336 is the tie 10.5·32 → 320 = 0x7A.
  want[128] = 0x7A;
  want[129] = 0xFA;
  want[130] = 0x38;
  put(want, 516, {0x00, 0x00, 0x80, 0x3F});
  // Tile 2: amax 28 → 2^−4: 28·16 = 448 = 0x7E, 16 = 0x58, −0.16 → −10·2^−6 = 0xA2.
  want[256] = 0x7E;
  want[257] = 0x58;
  want[258] = 0xA2;
  put(want, 520, {0x00, 0x00, 0x80, 0x3D});
  // Tile 3: amax 29 → 29/448 = 0.0647 → 2^−3: 232 is the tie 14.5·16 → 224 = 0x76; −24 = 0xDC.
  want[384] = 0x76;
  want[400] = 0xDC;
  put(want, 524, {0x00, 0x00, 0x00, 0x3E});
  const auto rope = v32_rope_bytes();
  std::copy(rope.begin(), rope.end(), want.begin() + 528);
  const std::vector<std::uint8_t> got(buf.values.begin() + 1968, buf.values.end());
  EXPECT_EQ(got, want);
  // Everything else is untouched.
  for (std::size_t i = 0; i < 1968; ++i) ASSERT_EQ(buf.values[i], 0) << i;

  const std::vector<float> v = read_token(buf, 1, 1);
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[128], 320.0f);
  EXPECT_EQ(v[129], -320.0f);
  EXPECT_EQ(v[130], 1.0f);
  EXPECT_EQ(v[256], 28.0f);
  EXPECT_EQ(v[257], 1.0f);
  EXPECT_EQ(v[258], -0.009765625f);
  EXPECT_EQ(v[384], 28.0f);
  EXPECT_EQ(v[400], -3.0f);
  EXPECT_EQ(v[512], 1.0f);
  EXPECT_EQ(v[513], -2.5f);
  EXPECT_EQ(v[514], 1.0f);
  EXPECT_EQ(v[515], 1.015625f);
  EXPECT_EQ(v[575], 3.0f);
  float scales[8];
  ASSERT_EQ(dsa::read_mla_scales(buf.view(), 1, 1, scales), 4);
  EXPECT_EQ(scales[0], std::ldexp(1.0f, -13));
  EXPECT_EQ(scales[1], 1.0f);
  EXPECT_EQ(scales[2], 0.0625f);
  EXPECT_EQ(scales[3], 0.125f);
}

TEST(Spec2_4_QuantizeKv, V32Fp32ScaleKnownBytes) {
  dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 1, 1));
  const std::vector<float> x = v32_token();
  const std::vector<std::int64_t> slots = {0};
  dsa::quantize_kv(x, 1, 576, slots, buf.span(), {ScalePolicy::fp32, 0.0f});
  std::vector<std::uint8_t> want(656, 0);
  put(want, 512, f32_le(1e-4f));  // the documented floor of an all-zero tile
  EXPECT_EQ(f32_le(1e-4f), (std::vector<std::uint8_t>{0x17, 0xB7, 0xD1, 0x38}));
  // Tile 1: scale 336/448 = 0.75: ±336 → ±448 = 0x7E/0xFE; 1/0.75 = 1.33 → 1.375 = 0x3B.
  want[128] = 0x7E;
  want[129] = 0xFE;
  want[130] = 0x3B;
  put(want, 516, {0x00, 0x00, 0x40, 0x3F});
  // Tile 2: 28/448 = 0.0625 exactly, the same codes as under pow2_ceil.
  want[256] = 0x7E;
  want[257] = 0x58;
  want[258] = 0xA2;
  put(want, 520, {0x00, 0x00, 0x80, 0x3D});
  // Tile 3: 29/448 (fp32); 29/s = 448 → 0x7E; −3/s = −46.3 → −48 = 0xE4.
  want[384] = 0x7E;
  want[400] = 0xE4;
  put(want, 524, f32_le(29.0f / 448.0f));
  const auto rope = v32_rope_bytes();
  std::copy(rope.begin(), rope.end(), want.begin() + 528);
  EXPECT_EQ(buf.values, want);
  const std::vector<float> v = read_token(buf, 0, 0);
  EXPECT_EQ(v[128], 336.0f);
  EXPECT_EQ(v[130], 1.03125f);
  EXPECT_EQ(v[384], 448.0f * (29.0f / 448.0f));
  EXPECT_EQ(v[400], -48.0f * (29.0f / 448.0f));
}

TEST(Spec2_4_QuantizeKv, AllZeroTileStores2ToMinus13UnderPow2Ceil) {
  EXPECT_EQ(dsa::mla_tile_scale(0.0f, 448.0f, ScalePolicy::pow2_ceil), std::ldexp(1.0f, -13));
  EXPECT_EQ(dsa::mla_tile_scale(0.0f, 240.0f, ScalePolicy::pow2_ceil), std::ldexp(1.0f, -13));
  EXPECT_EQ(dsa::mla_tile_scale(0.0f, 448.0f, ScalePolicy::fp32), 1e-4f);
  EXPECT_EQ(dsa::mla_tile_scale(336.0f, 448.0f, ScalePolicy::pow2_ceil), 1.0f);
  EXPECT_EQ(dsa::mla_tile_scale(336.0f, 448.0f, ScalePolicy::fp32), 0.75f);
  EXPECT_EQ(dsa::mla_tile_scale(448.0f, 448.0f, ScalePolicy::pow2_ceil), 1.0f);
  EXPECT_EQ(dsa::mla_tile_scale(std::nextafter(448.0f, 1e9f), 448.0f, ScalePolicy::pow2_ceil), 2.0f);
  // pow2_ceil floors amax/fmax at 1e-4 before rounding up: a tiny tile also gets 2^−13.
  EXPECT_EQ(dsa::mla_tile_scale(1e-3f, 448.0f, ScalePolicy::pow2_ceil), std::ldexp(1.0f, -13));
  // fp32: s = amax/fmax for every non-zero amax (SPEC §2.4: the floor is for amax = 0).
  EXPECT_EQ(dsa::mla_tile_scale(1e-3f, 448.0f, ScalePolicy::fp32), 1e-3f / 448.0f);
  EXPECT_STREQ(dsa::to_string(ScalePolicy::pow2_ceil), "pow2_ceil");
  EXPECT_STREQ(dsa::to_string(ScalePolicy::fp32), "fp32");
}

TEST(Spec2_4_QuantizeKv, FmaxParameter224WithE4m3fnuz) {
  std::vector<float> x(576, 0.0f);
  x[0] = 336.0f;
  x[1] = -1.0f;
  const std::vector<std::int64_t> slots = {0};
  struct Case {
    ScalePolicy policy;
    float fmax;
    float scale;
    std::uint8_t code0, code1;
  };
  // fnuz: 224 = 0x7E, 240 = 0x7F, 160 = 0x7A (168 is the tie 10.5·16 → 160);
  // −1/2 = −0.5 → 0xB8; −1/1.5 → −0.6875 = 0xBB (0.667 is nearer 0.6875 than 0.625);
  // −1/1.4 = −0.714 → −0.6875 = 0xBB.
  const Case cases[] = {
      {ScalePolicy::pow2_ceil, 224.0f, 2.0f, 0x7A, 0xB8},   // 336/224 = 1.5 → 2
      {ScalePolicy::fp32, 224.0f, 1.5f, 0x7E, 0xBB},        // 336/1.5 = 224
      {ScalePolicy::pow2_ceil, 0.0f, 2.0f, 0x7A, 0xB8},     // default 240: 1.4 → 2
      {ScalePolicy::fp32, 0.0f, 336.0f / 240.0f, 0x7F, 0xBB},  // 336/1.4 = 240
  };
  for (const Case& c : cases) {
    dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fnuz, 1, 1));
    dsa::quantize_kv(x, 1, 576, slots, buf.span(), {c.policy, c.fmax});
    float scales[8];
    dsa::read_mla_scales(buf.view(), 0, 0, scales);
    EXPECT_EQ(scales[0], c.scale) << c.fmax;
    EXPECT_EQ(buf.values[0], c.code0) << c.fmax;
    EXPECT_EQ(buf.values[1], c.code1) << c.fmax;
    // Other tiles are all zero: 2^−13 (pow2_ceil) or the 1e-4 floor (fp32).
    EXPECT_EQ(scales[1], c.policy == ScalePolicy::pow2_ceil ? std::ldexp(1.0f, -13) : 1e-4f);
  }
}

// ---------------------------------------------------------------------------------------------
// Known answers: MODEL1, MODEL1_SPLIT, BF16.

std::vector<float> model1_token() {
  std::vector<float> x(512, 0.0f);
  x[64] = 336.0f;  // tile 1 → 1 (0x7F); 336 → 0x7A
  x[65] = 1.0f;    // 0x38
  x[128] = 28.0f;  // tile 2 → 2^−4 (0x7B); 448 → 0x7E
  x[200] = 29.0f;  // tile 3 → 2^−3 (0x7C); 232 → 224 = 0x76
  x[256] = 1000.0f;  // tile 4 → 1000/448 = 2.23 → 4 (0x81); 250 → 256 = 0x78
  x[320] = -1e-3f;   // tile 5 → below the 1e-4 floor → 2^−13 (0x72); −8.19 → −8 = 0xD0
  x[447] = 0.5f;     // tile 6 → 0.5/448 = 0.00112 → 2^−9 (0x76); 256 = 0x78
  x[448] = 1.0f;     // RoPE bf16
  x[511] = -2.5f;
  return x;
}
const std::uint8_t kModel1ScaleRow[8] = {0x72, 0x7F, 0x7B, 0x7C, 0x81, 0x72, 0x76, 0x00};

std::vector<std::uint8_t> model1_value_row() {
  std::vector<std::uint8_t> r(576, 0);
  r[64] = 0x7A;
  r[65] = 0x38;
  r[128] = 0x7E;
  r[200] = 0x76;
  r[256] = 0x78;
  r[320] = 0xD0;
  r[447] = 0x78;
  put(r, 448, u16_le(0x3F80));
  put(r, 574, u16_le(0xC020));
  return r;
}

void expect_model1_values(const std::vector<float>& v) {
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[64], 320.0f);
  EXPECT_EQ(v[65], 1.0f);
  EXPECT_EQ(v[128], 28.0f);
  EXPECT_EQ(v[200], 28.0f);
  EXPECT_EQ(v[256], 1024.0f);
  EXPECT_EQ(v[320], -0.0009765625f);
  EXPECT_EQ(v[447], 0.5f);
  EXPECT_EQ(v[448], 1.0f);
  EXPECT_EQ(v[511], -2.5f);
}

TEST(Spec2_4_QuantizeKv, Model1KnownBytes) {
  auto g = MlaCacheGeometry::packed(MlaLayout::MODEL1, Fp8Format::e4m3fn, 2, 2);
  g.block_stride_bytes = 1728 + 64;
  dsa::MlaCacheBuffer buf(g);
  std::fill(buf.values.begin(), buf.values.end(), kSentinel);
  const std::vector<float> x = model1_token();
  const std::vector<std::int64_t> slots = {3};  // block 1, t 1
  dsa::quantize_kv(x, 1, 512, slots, buf.span());
  std::vector<std::uint8_t> want(buf.values.size(), kSentinel);
  const auto row = model1_value_row();
  std::copy(row.begin(), row.end(), want.begin() + 1792 + 576);             // value row 1
  std::copy(kModel1ScaleRow, kModel1ScaleRow + 8, want.begin() + 1792 + 1152 + 8);  // scale row 1
  EXPECT_EQ(buf.values, want);
  expect_model1_values(read_token(buf, 1, 1));
  float scales[8];
  ASSERT_EQ(dsa::read_mla_scales(buf.view(), 1, 1, scales), 7);
  EXPECT_EQ(scales[4], 4.0f);
  EXPECT_EQ(scales[5], std::ldexp(1.0f, -13));
}

TEST(Spec2_4_QuantizeKv, Model1SplitKnownBytes) {
  auto g = MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 2, 2);
  g.block_stride_bytes = 1152 + 100;
  g.scale_block_stride_bytes = 16 + 3;
  dsa::MlaCacheBuffer buf(g);
  std::fill(buf.values.begin(), buf.values.end(), kSentinel);
  std::fill(buf.scales.begin(), buf.scales.end(), kSentinel);
  const std::vector<float> x = model1_token();
  const std::vector<std::int64_t> slots = {2};  // block 1, t 0
  dsa::quantize_kv(x, 1, 512, slots, buf.span());
  std::vector<std::uint8_t> want(buf.values.size(), kSentinel), want_s(buf.scales.size(), kSentinel);
  const auto row = model1_value_row();
  std::copy(row.begin(), row.end(), want.begin() + 1252);
  std::copy(kModel1ScaleRow, kModel1ScaleRow + 8, want_s.begin() + 19);
  EXPECT_EQ(buf.values, want);
  EXPECT_EQ(buf.scales, want_s);
  expect_model1_values(read_token(buf, 1, 0));
}

TEST(Spec2_4_QuantizeKv, Bf16KnownBytes) {
  for (int D : {576, 512}) {
    dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 1, 3, D));
    std::fill(buf.values.begin(), buf.values.end(), kSentinel);
    std::vector<float> x(static_cast<std::size_t>(D) + 5, 7.0f);  // row_stride D + 5
    x[0] = 1.0f;
    x[1] = indep::float_of(0x3F818000u);  // tie → 0x3F82
    x[2] = -0.0f;
    x[static_cast<std::size_t>(D) - 1] = -2.5f;
    const std::vector<std::int64_t> slots = {2};
    dsa::quantize_kv(x, 1, D + 5, slots, buf.span(), {ScalePolicy::pow2_ceil, 0.0f});
    std::vector<std::uint8_t> want(buf.values.size(), kSentinel);
    const std::size_t base = 2u * 2 * static_cast<std::size_t>(D);
    for (int d = 0; d < D; ++d) put(want, base + 2 * static_cast<std::size_t>(d), u16_le(0x40E0));  // 7.0
    put(want, base + 0, u16_le(0x3F80));
    put(want, base + 2, u16_le(0x3F82));
    put(want, base + 4, u16_le(0x8000));
    put(want, base + 2 * static_cast<std::size_t>(D - 1), u16_le(0xC020));
    EXPECT_EQ(buf.values, want);
    const std::vector<float> v = read_token(buf, 0, 2);
    EXPECT_EQ(v[1], 1.015625f);
    EXPECT_EQ(v[static_cast<std::size_t>(D) - 1], -2.5f);
  }
}

TEST(Spec2_4_QuantizeKv, SlotMinusOneSkipsTheRow) {
  for (MlaLayout l : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16}) {
    dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(l, Fp8Format::e4m3fn, 2, 3));
    std::fill(buf.values.begin(), buf.values.end(), kSentinel);
    std::fill(buf.scales.begin(), buf.scales.end(), kSentinel);
    const int D = buf.geo.dim_qk();
    std::vector<float> x(3 * static_cast<std::size_t>(D), 1.0f);
    const std::vector<std::int64_t> skip_all = {-1, -1, -1};
    dsa::quantize_kv(x, 3, D, skip_all, buf.span());
    for (auto b : buf.values) ASSERT_EQ(b, kSentinel) << dsa::to_string(l);
    for (auto b : buf.scales) ASSERT_EQ(b, kSentinel) << dsa::to_string(l);
    // Mixed: only rows with a slot land, each in its own slot.
    for (std::size_t d = 0; d < static_cast<std::size_t>(D); ++d) x[2 * D + d] = 3.0f;
    const std::vector<std::int64_t> mixed = {-1, 5, 0};
    dsa::quantize_kv(x, 3, D, mixed, buf.span());
    EXPECT_EQ(read_token(buf, 1, 2)[0], 1.0f);
    EXPECT_EQ(read_token(buf, 0, 0)[0], 3.0f);
    std::vector<bool> owned(buf.values.size()), owned_s(buf.scales.size());
    for (std::int64_t slot : {5, 0})
      for (const Extent& e : token_extents(buf.geo, slot / 3, slot % 3))
        for (std::int64_t i = e.first; i < e.first + e.count; ++i) (e.tensor == 0 ? owned : owned_s)[i] = true;
    for (std::size_t i = 0; i < buf.values.size(); ++i)
      if (!owned[i]) ASSERT_EQ(buf.values[i], kSentinel) << dsa::to_string(l) << " byte " << i;
    for (std::size_t i = 0; i < buf.scales.size(); ++i)
      if (!owned_s[i]) ASSERT_EQ(buf.scales[i], kSentinel) << dsa::to_string(l) << " scale byte " << i;
  }
}

TEST(Spec2_4_QuantizeKv, BytesBetweenPagesAreUntouched) {
  for (MlaLayout l : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16}) {
    auto g = MlaCacheGeometry::packed(l, Fp8Format::e4m3fn, 3, 5);
    g.block_stride_bytes += 77;  // stride > page bytes, not even aligned
    if (l == MlaLayout::MODEL1_SPLIT) g.scale_block_stride_bytes += 13;
    dsa::MlaCacheBuffer buf(g);
    std::fill(buf.values.begin(), buf.values.end(), kSentinel);
    std::fill(buf.scales.begin(), buf.scales.end(), kSentinel);
    const int D = g.dim_qk();
    std::vector<float> x(15 * static_cast<std::size_t>(D));
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (float& v : x) v = nd(rng);
    std::vector<std::int64_t> slots(15);
    std::iota(slots.begin(), slots.end(), 0);
    dsa::quantize_kv(x, 15, D, slots, buf.span());
    const std::int64_t page = g.page_bytes();
    // MODEL1 pages also carry padding after the scale rows (P·584 → multiple of 576).
    const std::int64_t used = l == MlaLayout::MODEL1 ? 5 * 584 : page;
    for (std::int64_t b = 0; b < 3; ++b) {
      for (std::int64_t i = b * g.block_stride_bytes + used; i < std::min<std::int64_t>((b + 1) * g.block_stride_bytes,
                                                                                           buf.values.size());
           ++i)
        ASSERT_EQ(buf.values[static_cast<std::size_t>(i)], kSentinel) << dsa::to_string(l) << " byte " << i;
      if (l == MlaLayout::MODEL1_SPLIT)
        for (std::int64_t i = b * g.scale_block_stride_bytes + 40;
             i < std::min<std::int64_t>((b + 1) * g.scale_block_stride_bytes, buf.scales.size()); ++i)
          ASSERT_EQ(buf.scales[static_cast<std::size_t>(i)], kSentinel) << " scale byte " << i;
    }
    for (std::int64_t s = 0; s < 15; ++s) {
      const auto want = expected_mla_token(x.data() + s * D, l, g.fp8, ScalePolicy::pow2_ceil, 0, 576);
      const auto got = read_token(buf, s / 5, s % 5);
      for (int d = 0; d < D; ++d) ASSERT_EQ(bits(got[d]), bits(want.values[d])) << dsa::to_string(l) << " " << s << " " << d;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Known answers: index K.

TEST(Spec6_1_QuantizeIndexK, KnownBytesBothLayoutsBothScaleKinds) {
  std::vector<float> k(2 * 128, 0.0f);  // row 0: amax 336; row 1: all zero
  k[0] = 336.0f;
  k[1] = -1.0f;
  k[37] = 0.3f;
  struct Case {
    bool ue8m0;
    float s0, s1;
    std::uint8_t c0, c1, c37;
  };
  // fp32: s = 336/448 = 0.75: 448 → 0x7E, −1.33 → −1.375 = 0xBB, 0.4 → 0.40625 = 0x2D.
  // ue8m0: s = 1: 336 → 320 = 0x7A (tie), −1 → 0xB8, 0.3 → 0.3125 = 0x2A.
  // An all-zero token: 1e-4/448, or 2^−22 rounded up.
  const Case cases[] = {{false, 0.75f, 1e-4f / 448.0f, 0x7E, 0xBB, 0x2D},
                        {true, 1.0f, std::ldexp(1.0f, -22), 0x7A, 0xB8, 0x2A}};
  for (IndexKLayout l : {IndexKLayout::standard, IndexKLayout::preshuffle}) {
    for (const Case& c : cases) {
      auto g = IndexKGeometry::packed(l, Fp8Format::e4m3fn, 2, 16, 128);
      g.block_stride_bytes = 2112 + 16;
      dsa::IndexKCacheBuffer buf(g);
      std::fill(buf.bytes.begin(), buf.bytes.end(), kSentinel);
      const std::vector<std::int64_t> slots = {21, 2};  // (block 1, t 5) and (block 0, t 2)
      dsa::quantize_index_k(k, 2, slots, buf.span(), {c.ue8m0, 0.0f});
      std::vector<std::uint8_t> want(buf.bytes.size(), kSentinel);
      // Token (1, 5): standard at 2128 + 5·128 + d; preshuffle at 2128 + (d/16)·256 + 5·16 + d%16.
      // Token (0, 2): standard at 2·128 + d; preshuffle at (d/16)·256 + 2·16 + d%16.
      for (int d = 0; d < 128; ++d) {
        const std::size_t a = l == IndexKLayout::standard ? 5 * 128 + d : (d / 16) * 256 + 80 + d % 16;
        const std::size_t b = l == IndexKLayout::standard ? 2 * 128 + d : (d / 16) * 256 + 32 + d % 16;
        want[2128 + a] = d == 0 ? c.c0 : d == 1 ? c.c1 : d == 37 ? c.c37 : 0x00;
        want[b] = 0x00;
      }
      put(want, 2128 + 2048 + 20, f32_le(c.s0));
      put(want, 2048 + 8, f32_le(c.s1));
      EXPECT_EQ(buf.bytes, want) << dsa::to_string(l) << " ue8m0 " << c.ue8m0;
      EXPECT_EQ(dsa::read_index_k_scale(buf.view(), 1, 5), c.s0);
      EXPECT_EQ(dsa::read_index_k_code(buf.view(), 1, 5, 37), c.c37);
    }
  }
  EXPECT_EQ(dsa::index_k_token_scale(0.0f, 448.0f, false), 1e-4f / 448.0f);
  EXPECT_EQ(dsa::index_k_token_scale(0.0f, 448.0f, true), std::ldexp(1.0f, -22));
  EXPECT_EQ(dsa::index_k_token_scale(336.0f, 448.0f, true), 1.0f);
}

TEST(Spec6_1_QuantizeIndexK, FmaxParameter224WithE4m3fnuz) {
  std::vector<float> k(16, 0.0f);
  k[0] = 336.0f;
  auto g = IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fnuz, 1, 1, 16);
  dsa::IndexKCacheBuffer buf(g);
  const std::vector<std::int64_t> slots = {0};
  dsa::quantize_index_k(k, 1, slots, buf.span(), {false, 224.0f});
  EXPECT_EQ(buf.bytes[0], 0x7E);  // 336 / 1.5 = 224
  EXPECT_EQ(dsa::read_index_k_scale(buf.view(), 0, 0), 1.5f);
  dsa::quantize_index_k(k, 1, slots, buf.span(), {false, 0.0f});
  EXPECT_EQ(buf.bytes[0], 0x7F);  // 336 / 1.4 = 240
  EXPECT_EQ(dsa::read_index_k_scale(buf.view(), 0, 0), 336.0f / 240.0f);
}

// ---------------------------------------------------------------------------------------------
// Round-trip properties.

const MlaLayout kMlaLayouts[] = {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16};
const int kPages[] = {1, 2, 3, 16, 53, 64, 69};

// Rows of `dim` values (then stride − dim NaNs the writer must not read) whose tiles mix the cases
// that matter: all zero, tiny (below the 1e-4 floor), values on the fp8 grid (exact ties after
// scaling), exact fmax multiples, bf16 ties, wide-range normals.
std::vector<float> random_rows(std::uint64_t seed, std::int64_t n, std::int64_t stride, int dim, int tile) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> kind(0, 5), ex(-14, 12), code(0, 255);
  std::vector<float> x(static_cast<std::size_t>(n * stride), std::numeric_limits<float>::quiet_NaN());
  for (std::int64_t r = 0; r < n; ++r) {
    for (int t0 = 0; t0 < dim; t0 += tile) {
      const int kd = kind(rng);
      const float mag = std::ldexp(1.0f, ex(rng));
      for (int d = t0; d < std::min(dim, t0 + tile); ++d) {
        float& v = x[static_cast<std::size_t>(r * stride + d)];
        switch (kd) {
          case 0: v = 0.0f; break;
          case 1: v = nd(rng) * 1e-6f; break;
          case 2: {
            const double c = indep::fp8_value(static_cast<std::uint8_t>(code(rng)), false);
            v = std::isnan(c) ? 0.0f : static_cast<float>(c) * mag;
            break;
          }
          case 3: v = (rng() & 1 ? 448.0f : -240.0f) * mag; break;
          case 4: v = indep::float_of((indep::bits_of(nd(rng) * mag) & 0xFFFF0000u) | 0x8000u); break;
          default: v = nd(rng) * mag; break;
        }
      }
    }
  }
  return x;
}

RC_GTEST_PROP(Spec2_4_QuantizeKvProperty, WriteThenReadGivesTheIndependentlyDequantizedValues, ()) {
  const MlaLayout l = *rc::gen::elementOf(std::vector<MlaLayout>(std::begin(kMlaLayouts), std::end(kMlaLayouts)));
  const Fp8Format f = *rc::gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz);
  const ScalePolicy policy =
      l == MlaLayout::MODEL1 || l == MlaLayout::MODEL1_SPLIT ? ScalePolicy::pow2_ceil
                                                             : *rc::gen::element(ScalePolicy::pow2_ceil, ScalePolicy::fp32);
  const int P = *rc::gen::elementOf(std::vector<int>(std::begin(kPages), std::end(kPages)));
  const std::int64_t nb = *rc::gen::inRange<std::int64_t>(1, 4);
  const int bf16_dim = *rc::gen::element(576, 512);
  auto g = MlaCacheGeometry::packed(l, f, nb, P, bf16_dim);
  g.block_stride_bytes += *rc::gen::inRange<std::int64_t>(0, 700);
  if (l == MlaLayout::MODEL1_SPLIT) g.scale_block_stride_bytes += *rc::gen::inRange<std::int64_t>(0, 20);
  const float fmax = *rc::gen::element(0.0f, 224.0f, format_max(f), format_max(f) / 3.0f);
  const int D = g.dim_qk();
  const std::int64_t capacity = g.capacity_tokens();
  const std::int64_t n = *rc::gen::inRange<std::int64_t>(0, std::min<std::int64_t>(capacity, 12) + 3);
  const std::int64_t row_stride = D + *rc::gen::inRange<std::int64_t>(0, 4);
  // Distinct slots (a permutation prefix) with some rows skipped.
  std::vector<std::int64_t> perm(static_cast<std::size_t>(capacity));
  std::iota(perm.begin(), perm.end(), 0);
  const auto seed = *rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>());
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<std::int64_t> slots(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) slots[i] = (i >= capacity || rng() % 4 == 0) ? -1 : perm[i];
  const int tile = l == MlaLayout::V32 ? 128 : 64;
  const std::vector<float> x = random_rows(seed ^ 0x5EED, n, row_stride, D, tile);

  dsa::MlaCacheBuffer buf(g);
  std::fill(buf.values.begin(), buf.values.end(), kSentinel);
  std::fill(buf.scales.begin(), buf.scales.end(), kSentinel);
  dsa::quantize_kv(x, n, row_stride, slots, buf.span(), {policy, fmax});

  std::vector<bool> owned(buf.values.size()), owned_s(buf.scales.size());
  float scales[8];
  for (std::int64_t i = 0; i < n; ++i) {
    if (slots[i] < 0) continue;
    const std::int64_t block = slots[i] / P, t = slots[i] % P;
    const auto want = expected_mla_token(x.data() + i * row_stride, l, f, policy, fmax, bf16_dim);
    const auto got = read_token(buf, block, t);
    for (int d = 0; d < D; ++d) {
      if (bits(got[d]) != bits(want.values[d]))
        RC_FAIL("row " + std::to_string(i) + " dim " + std::to_string(d) + ": got " + std::to_string(got[d]) +
                " want " + std::to_string(want.values[d]));
    }
    const int ns = dsa::read_mla_scales(buf.view(), block, t, scales);
    RC_ASSERT(ns == static_cast<int>(want.scales.size()));
    for (int k = 0; k < ns; ++k) RC_ASSERT(bits(scales[k]) == bits(want.scales[k]));
    for (const Extent& e : token_extents(g, block, t))
      for (std::int64_t j = e.first; j < e.first + e.count; ++j) (e.tensor == 0 ? owned : owned_s)[j] = true;
  }
  for (std::size_t j = 0; j < buf.values.size(); ++j)
    if (!owned[j]) RC_ASSERT(buf.values[j] == kSentinel);
  for (std::size_t j = 0; j < buf.scales.size(); ++j)
    if (!owned_s[j]) RC_ASSERT(buf.scales[j] == kSentinel);
}

// Random index-K cache contents: codes anywhere in the value region, scales as fp32 bit patterns.
void fill_random_pages(dsa::IndexKCacheBuffer& buf, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::fill(buf.bytes.begin(), buf.bytes.end(), kSentinel);
  const auto& g = buf.geo;
  for (std::int64_t b = 0; b < g.num_blocks; ++b)
    for (std::int64_t i = 0; i < g.page_bytes(); ++i)
      buf.bytes[static_cast<std::size_t>(b * g.block_stride_bytes + i)] = static_cast<std::uint8_t>(rng());
}

RC_GTEST_PROP(Spec6_1_TranscodeProperty, PreshuffleAndStandardRoundTripIsLossless, ()) {
  const int P = 16 * *rc::gen::inRange(1, 5);
  const int D = 16 * *rc::gen::inRange(1, 9);
  const std::int64_t nb = *rc::gen::inRange<std::int64_t>(1, 4);
  const Fp8Format f = *rc::gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz);
  const IndexKLayout from = *rc::gen::element(IndexKLayout::standard, IndexKLayout::preshuffle);
  const IndexKLayout via = *rc::gen::element(IndexKLayout::standard, IndexKLayout::preshuffle);
  auto gs = IndexKGeometry::packed(from, f, nb, P, D);
  auto gv = IndexKGeometry::packed(via, f, nb, P, D);
  auto gb = gs;
  gs.block_stride_bytes += 4 * *rc::gen::inRange<std::int64_t>(0, 10);
  gv.block_stride_bytes += 4 * *rc::gen::inRange<std::int64_t>(0, 10);
  gb.block_stride_bytes += 4 * *rc::gen::inRange<std::int64_t>(0, 10);
  dsa::IndexKCacheBuffer src(gs), mid(gv), back(gb);
  fill_random_pages(src, *rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>()));
  std::fill(mid.bytes.begin(), mid.bytes.end(), kSentinel);
  std::fill(back.bytes.begin(), back.bytes.end(), kSentinel);
  dsa::transcode_index_k(src.view(), mid.span());
  dsa::transcode_index_k(mid.view(), back.span());
  for (std::int64_t b = 0; b < nb; ++b) {
    for (std::int64_t t = 0; t < P; ++t) {
      for (int d = 0; d < D; ++d) {
        const auto c = dsa::read_index_k_code(src.view(), b, t, d);
        RC_ASSERT(dsa::read_index_k_code(mid.view(), b, t, d) == c);
        RC_ASSERT(dsa::read_index_k_code(back.view(), b, t, d) == c);
      }
      const float s = dsa::read_index_k_scale(src.view(), b, t);
      RC_ASSERT(bits(dsa::read_index_k_scale(mid.view(), b, t)) == bits(s));
    }
    // The round trip restores each page byte for byte; bytes between pages stay untouched.
    for (std::int64_t i = 0; i < gs.page_bytes(); ++i)
      RC_ASSERT(back.bytes[static_cast<std::size_t>(b * gb.block_stride_bytes + i)] ==
                src.bytes[static_cast<std::size_t>(b * gs.block_stride_bytes + i)]);
    for (std::int64_t i = gv.page_bytes(); i < gv.block_stride_bytes && b * gv.block_stride_bytes + i <
                                                                           static_cast<std::int64_t>(mid.bytes.size());
         ++i)
      RC_ASSERT(mid.bytes[static_cast<std::size_t>(b * gv.block_stride_bytes + i)] == kSentinel);
  }
}

RC_GTEST_PROP(Spec6_1_GatherProperty, GatherIndexKInvertsQuantizeIndexK, ()) {
  const IndexKLayout l = *rc::gen::element(IndexKLayout::standard, IndexKLayout::preshuffle);
  const Fp8Format f = *rc::gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz);
  const int P = l == IndexKLayout::preshuffle ? 16 * *rc::gen::inRange(1, 5) : *rc::gen::element(1, 2, 5, 16, 64);
  const int D = l == IndexKLayout::preshuffle ? 16 * *rc::gen::inRange(1, 9) : *rc::gen::element(1, 7, 16, 128);
  const bool ue8m0 = *rc::gen::arbitrary<bool>();
  const float fmax = *rc::gen::element(0.0f, format_max(f) / 2);
  const std::int64_t batch = *rc::gen::inRange<std::int64_t>(0, 4);
  const std::int64_t max_blocks = *rc::gen::inRange<std::int64_t>(1, 4);
  std::vector<std::int32_t> seq_lens(static_cast<std::size_t>(batch));
  for (auto& s : seq_lens) s = *rc::gen::inRange<std::int32_t>(0, static_cast<std::int32_t>(max_blocks * P) + 1);
  const auto seed = *rc::gen::noShrink(rc::gen::arbitrary<std::uint64_t>());
  std::mt19937_64 rng(seed);
  // Every sequence gets its own blocks (a shuffled pool with spares); unused table entries hold
  // garbage that must never be looked at.
  std::int64_t needed = 0;
  for (auto s : seq_lens) needed += (s + P - 1) / P;
  const std::int64_t nb = needed + *rc::gen::inRange<std::int64_t>(0, 3);
  std::vector<std::int32_t> pool(static_cast<std::size_t>(nb));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<std::int32_t> table(static_cast<std::size_t>(batch * max_blocks));
  std::size_t next = 0;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t p = 0; p < max_blocks; ++p)
      table[b * max_blocks + p] = p < (seq_lens[b] + P - 1) / P ? pool[next++]
                                                                : static_cast<std::int32_t>(rng() % 3 == 0 ? -1 : 1 << 30);
  // Rows in sequence order with skipped rows (−1) interleaved.
  std::vector<std::int64_t> slots;
  std::vector<std::int64_t> row_of;  // gathered row → written row
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t p = 0; p < seq_lens[b]; ++p) {
      if (rng() % 5 == 0) slots.push_back(-1);
      row_of.push_back(static_cast<std::int64_t>(slots.size()));
      slots.push_back(static_cast<std::int64_t>(table[b * max_blocks + p / P]) * P + p % P);
    }
  const std::int64_t n = static_cast<std::int64_t>(slots.size());
  const std::vector<float> k = random_rows(seed ^ 0xC0FFEE, n, D, D, D);

  dsa::IndexKCacheBuffer buf(IndexKGeometry::packed(l, f, std::max<std::int64_t>(nb, 1), P, D));
  std::fill(buf.bytes.begin(), buf.bytes.end(), kSentinel);
  dsa::quantize_index_k(k, n, slots, buf.span(), {ue8m0, fmax});
  const std::int64_t total = static_cast<std::int64_t>(row_of.size());
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(total * D));
  std::vector<float> scales(static_cast<std::size_t>(total));
  dsa::gather_index_k(buf.view(), table, batch, max_blocks, seq_lens, codes, scales);
  const float fm = fmax > 0 ? fmax : format_max(f);
  for (std::int64_t r = 0; r < total; ++r) {
    const float* x = k.data() + row_of[r] * D;
    float amax = 0;
    for (int d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[d]));
    const float s = expected_index_scale(amax, fm, ue8m0);
    RC_ASSERT(bits(scales[r]) == bits(s));
    for (int d = 0; d < D; ++d) RC_ASSERT(codes[r * D + d] == expected_code(x[d], s, f));
  }
}

// ---------------------------------------------------------------------------------------------
// SPEC §8: validation names the argument and writes nothing.

struct MlaFixture {
  dsa::MlaCacheBuffer buf;
  std::vector<float> rows;
  std::vector<std::uint8_t> before_values, before_scales;
  explicit MlaFixture(MlaLayout l, Fp8Format f = Fp8Format::e4m3fn)
      : buf(MlaCacheGeometry::packed(l, f, 2, 4)), rows(2 * static_cast<std::size_t>(buf.geo.dim_qk()), 1.5f) {
    std::fill(buf.values.begin(), buf.values.end(), kSentinel);
    std::fill(buf.scales.begin(), buf.scales.end(), kSentinel);
    before_values = buf.values;
    before_scales = buf.scales;
  }
  int D() const { return buf.geo.dim_qk(); }
  void expect_untouched() const {
    EXPECT_EQ(buf.values, before_values) << "the writer wrote before failing";
    EXPECT_EQ(buf.scales, before_scales) << "the writer wrote before failing";
  }
};

TEST(Spec8_QuantizeKvValidation, BadSlotsNameSlotMappingAndWriteNothing) {
  for (MlaLayout l : kMlaLayouts) {
    for (std::int64_t bad : {std::int64_t{8}, std::int64_t{-2}, std::numeric_limits<std::int64_t>::max(),
                             std::numeric_limits<std::int64_t>::min()}) {
      MlaFixture fx(l);
      const std::vector<std::int64_t> slots = {0, bad};  // a good row first: nothing may land
      expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), slots, fx.buf.span()); }, "slot_mapping");
      fx.expect_untouched();
    }
    MlaFixture fx(l);
    const std::vector<std::int64_t> short_slots = {0};
    expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), short_slots, fx.buf.span()); }, "slot_mapping");
    fx.expect_untouched();
  }
}

TEST(Spec8_QuantizeKvValidation, BadGeometryNamesTheCacheFieldAndWritesNothing) {
  const std::vector<std::int64_t> slots = {0, 1};
  for (MlaLayout l : kMlaLayouts) {
    SCOPED_TRACE(dsa::to_string(l));
    {
      MlaFixture fx(l);
      auto sp = fx.buf.span();
      sp.geo.page_tokens = 0;
      expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), slots, sp); }, "cache.page_tokens");
      fx.expect_untouched();
    }
    {
      MlaFixture fx(l);
      auto sp = fx.buf.span();
      sp.geo.block_stride_bytes = sp.geo.page_bytes() - 1;
      expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), slots, sp); }, "cache.block_stride_bytes");
      fx.expect_untouched();
    }
    {
      MlaFixture fx(l);
      auto sp = fx.buf.span();
      sp.values = sp.values.first(sp.values.size() - 1);
      expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), slots, sp); }, "cache.values");
      fx.expect_untouched();
    }
    if (l == MlaLayout::MODEL1_SPLIT) {
      MlaFixture fx(l);
      auto sp = fx.buf.span();
      sp.scales = sp.scales.first(sp.scales.size() - 1);
      expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), slots, sp); }, "cache.scales");
      fx.expect_untouched();
      auto sp2 = fx.buf.span();
      sp2.geo.scale_block_stride_bytes = 31;
      expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), slots, sp2); }, "cache.scale_block_stride_bytes");
      fx.expect_untouched();
    }
  }
}

TEST(Spec8_QuantizeKvValidation, BadRowsAndParamsNameTheirArgumentAndWriteNothing) {
  const std::vector<std::int64_t> slots = {0, 1};
  for (MlaLayout l : kMlaLayouts) {
    SCOPED_TRACE(dsa::to_string(l));
    MlaFixture fx(l);
    const int D = fx.D();
    const std::span<const float> rows(fx.rows);
    expect_invalid([&] { dsa::quantize_kv(rows.first(rows.size() - 1), 2, D, slots, fx.buf.span()); }, "rows");
    expect_invalid([&] { dsa::quantize_kv(rows, 2, D - 1, slots, fx.buf.span()); }, "row_stride");
    expect_invalid([&] { dsa::quantize_kv(rows, 2, D + 1, slots, fx.buf.span()); }, "rows");
    expect_invalid([&] { dsa::quantize_kv(rows, -1, D, slots, fx.buf.span()); }, "num_rows");
    fx.expect_untouched();
    if (l == MlaLayout::BF16) continue;  // no fp8 codes: fmax does not apply
    for (float bad : {-1.0f, std::numeric_limits<float>::quiet_NaN(), 449.0f, std::numeric_limits<float>::infinity()}) {
      expect_invalid([&] { dsa::quantize_kv(rows, 2, D, slots, fx.buf.span(), {ScalePolicy::pow2_ceil, bad}); },
                     "params.fmax");
      fx.expect_untouched();
    }
    MlaFixture uz(l, Fp8Format::e4m3fnuz);
    expect_invalid([&] { dsa::quantize_kv(uz.rows, 2, D, slots, uz.buf.span(), {ScalePolicy::pow2_ceil, 241.0f}); },
                   "params.fmax");
    uz.expect_untouched();
    EXPECT_NO_THROW(dsa::quantize_kv(uz.rows, 2, D, slots, uz.buf.span(), {ScalePolicy::pow2_ceil, 240.0f}));
  }
}

TEST(Spec8_QuantizeKvValidation, Fp32ScalesOnModel1AreRejected) {
  const std::vector<std::int64_t> slots = {0, 1};
  for (MlaLayout l : {MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT}) {
    MlaFixture fx(l);
    expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, fx.D(), slots, fx.buf.span(), {ScalePolicy::fp32, 0.0f}); },
                   "params.policy");
    fx.expect_untouched();
  }
}

struct IndexFixture {
  dsa::IndexKCacheBuffer buf;
  std::vector<float> k;
  std::vector<std::uint8_t> before;
  explicit IndexFixture(IndexKLayout l) : buf(IndexKGeometry::packed(l, Fp8Format::e4m3fn, 2, 16, 32)), k(2 * 32, 2.0f) {
    std::fill(buf.bytes.begin(), buf.bytes.end(), kSentinel);
    before = buf.bytes;
  }
  void expect_untouched() const { EXPECT_EQ(buf.bytes, before) << "the writer wrote before failing"; }
};

TEST(Spec8_QuantizeKvValidation, HugeCountsAreRejectedWithoutOverflow) {
  constexpr std::int64_t big = std::numeric_limits<std::int64_t>::max();
  MlaFixture fx(MlaLayout::V32);
  const std::vector<std::int64_t> slots = {0, 1};
  expect_invalid([&] { dsa::quantize_kv(fx.rows, big, 576, slots, fx.buf.span()); }, "rows");
  expect_invalid([&] { dsa::quantize_kv(fx.rows, big / 576 + 2, 576, slots, fx.buf.span()); }, "rows");
  expect_invalid([&] { dsa::quantize_kv(fx.rows, 2, big, slots, fx.buf.span()); }, "rows");
  fx.expect_untouched();
  IndexFixture ix(IndexKLayout::standard);
  expect_invalid([&] { dsa::quantize_index_k(ix.k, big / 2, slots, ix.buf.span()); }, "k");
  std::vector<std::uint8_t> codes(64);
  std::vector<float> scales(2);
  const std::vector<std::int32_t> table = {0, 1}, lens = {1, 1};
  expect_invalid([&] { dsa::gather_index_k(ix.buf.view(), table, std::int64_t{1} << 40, std::int64_t{1} << 40, lens,
                                           codes, scales); },
                 "block_table");
  ix.expect_untouched();
}

TEST(Spec8_QuantizeIndexKValidation, EveryErrorNamesItsArgumentAndWritesNothing) {
  for (IndexKLayout l : {IndexKLayout::standard, IndexKLayout::preshuffle}) {
    SCOPED_TRACE(dsa::to_string(l));
    for (std::int64_t bad : {std::int64_t{32}, std::int64_t{-2}, std::numeric_limits<std::int64_t>::max()}) {
      IndexFixture fx(l);
      const std::vector<std::int64_t> slots = {0, bad};
      expect_invalid([&] { dsa::quantize_index_k(fx.k, 2, slots, fx.buf.span()); }, "slot_mapping");
      fx.expect_untouched();
    }
    IndexFixture fx(l);
    const std::vector<std::int64_t> slots = {0, 1};
    const std::span<const float> k(fx.k);
    expect_invalid([&] { dsa::quantize_index_k(k.first(63), 2, slots, fx.buf.span()); }, "k");
    expect_invalid([&] { dsa::quantize_index_k(k, -1, slots, fx.buf.span()); }, "n");
    expect_invalid([&] { dsa::quantize_index_k(k, 2, std::span(slots).first(1), fx.buf.span()); }, "slot_mapping");
    for (float bad : {-1.0f, 449.0f, std::numeric_limits<float>::quiet_NaN()})
      expect_invalid([&] { dsa::quantize_index_k(k, 2, slots, fx.buf.span(), {false, bad}); }, "params.fmax");
    auto sp = fx.buf.span();
    sp.bytes = sp.bytes.first(sp.bytes.size() - 1);
    expect_invalid([&] { dsa::quantize_index_k(k, 2, slots, sp); }, "cache.bytes");
    sp = fx.buf.span();
    sp.geo.page_tokens = 0;
    expect_invalid([&] { dsa::quantize_index_k(k, 2, slots, sp); }, "cache.page_tokens");
    sp = fx.buf.span();
    sp.geo.block_stride_bytes -= 4;
    expect_invalid([&] { dsa::quantize_index_k(k, 2, slots, sp); }, "cache.block_stride_bytes");
    sp = fx.buf.span();
    sp.geo.block_stride_bytes += 2;
    sp.bytes = std::span<std::uint8_t>(fx.buf.bytes);
    expect_invalid([&] { dsa::quantize_index_k(k, 2, slots, sp); }, "cache.block_stride_bytes");
    fx.expect_untouched();
  }
  // Preshuffle needs P % 16 == 0 and D % 16 == 0; the same geometry is fine for standard.
  for (auto [P, D, arg] : {std::tuple{24, 32, "cache.page_tokens"}, std::tuple{16, 40, "cache.head_dim"}}) {
    auto g = IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, 1, P, D);
    dsa::IndexKCacheBuffer buf(g);
    std::fill(buf.bytes.begin(), buf.bytes.end(), kSentinel);
    const auto before = buf.bytes;
    const std::vector<float> k(static_cast<std::size_t>(D), 1.0f);
    const std::vector<std::int64_t> slots = {0};
    auto sp = buf.span();
    sp.geo.layout = IndexKLayout::preshuffle;
    expect_invalid([&] { dsa::quantize_index_k(k, 1, slots, sp); }, arg);
    EXPECT_EQ(buf.bytes, before);
    EXPECT_NO_THROW(dsa::quantize_index_k(k, 1, slots, buf.span()));
  }
}

TEST(Spec8_GatherIndexKValidation, EveryErrorNamesItsArgumentAndWritesNothing) {
  IndexFixture fx(IndexKLayout::standard);  // 2 blocks of 16 tokens, D 32
  const std::vector<std::int32_t> table = {1, 0, 0, 7};  // batch 2, max_blocks 2; seq 1 uses one page
  const std::vector<std::int32_t> lens = {20, 16};
  std::vector<std::uint8_t> codes(36 * 32, kSentinel);
  std::vector<float> scales(36, -7.0f);
  const auto codes0 = codes;
  const auto scales0 = scales;
  auto untouched = [&] {
    EXPECT_EQ(codes, codes0);
    EXPECT_EQ(scales, scales0);
  };
  EXPECT_NO_THROW(dsa::gather_index_k(fx.buf.view(), table, 2, 2, lens, codes, scales));  // entry 7 is never used
  std::fill(codes.begin(), codes.end(), kSentinel);
  std::fill(scales.begin(), scales.end(), -7.0f);
  const std::vector<std::int32_t> lens_bad_block = {20, 17};  // now entry [1][1] = 7 is used
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, 2, 2, lens_bad_block, codes, scales); }, "block_table");
  untouched();
  const std::vector<std::int32_t> negative_block = {-1, 0, 0, 0};
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), negative_block, 2, 2, lens, codes, scales); }, "block_table");
  const std::vector<std::int32_t> lens_too_long = {33, 1};
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, 2, 2, lens_too_long, codes, scales); }, "seq_lens");
  const std::vector<std::int32_t> lens_negative = {-1, 1};
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, 2, 2, lens_negative, codes, scales); }, "seq_lens");
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, 2, 2, std::span(lens).first(1), codes, scales); },
                 "seq_lens");
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), std::span(table).first(3), 2, 2, lens, codes, scales); },
                 "block_table");
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, -1, 2, lens, codes, scales); }, "batch");
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, 2, -1, lens, codes, scales); }, "max_blocks");
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, 2, 2, lens, std::span(codes).first(35 * 32), scales); },
                 "out_codes");
  expect_invalid([&] { dsa::gather_index_k(fx.buf.view(), table, 2, 2, lens, codes, std::span(scales).first(35)); },
                 "out_scales");
  auto view = fx.buf.view();
  view.bytes = view.bytes.first(10);
  expect_invalid([&] { dsa::gather_index_k(view, table, 2, 2, lens, codes, scales); }, "cache.bytes");
  untouched();
}

TEST(Spec8_TranscodeIndexKValidation, MismatchedGeometryNamesDstAndWritesNothing) {
  IndexFixture src(IndexKLayout::standard);
  for (auto change : {0, 1, 2, 3}) {
    auto g = IndexKGeometry::packed(IndexKLayout::preshuffle, Fp8Format::e4m3fn, 2, 16, 32);
    if (change == 0) g.num_blocks = 3;
    if (change == 1) g.page_tokens = 32;
    if (change == 2) g.head_dim = 48;
    if (change == 3) g.fp8 = Fp8Format::e4m3fnuz;
    g.block_stride_bytes = g.page_bytes();
    dsa::IndexKCacheBuffer dst(g);
    std::fill(dst.bytes.begin(), dst.bytes.end(), kSentinel);
    const auto before = dst.bytes;
    expect_invalid([&] { dsa::transcode_index_k(src.buf.view(), dst.span()); }, "dst");
    EXPECT_EQ(dst.bytes, before) << change;
  }
  dsa::IndexKCacheBuffer dst(IndexKGeometry::packed(IndexKLayout::preshuffle, Fp8Format::e4m3fn, 2, 16, 32));
  auto sp = dst.span();
  sp.bytes = sp.bytes.first(sp.bytes.size() - 1);
  expect_invalid([&] { dsa::transcode_index_k(src.buf.view(), sp); }, "dst.bytes");
  auto sv = src.buf.view();
  sv.geo.page_tokens = 0;
  expect_invalid([&] { dsa::transcode_index_k(sv, dst.span()); }, "src.page_tokens");
}

}  // namespace
