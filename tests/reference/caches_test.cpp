// SPEC §2, §6.1 and §8 for the cache objects: geometry, validation (errors name the argument and
// the rule), layout tags, and the readers on bytes written by hand at hand-derived offsets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/error.hpp"

namespace {

using dsa::Fp8Format;
using dsa::IndexKGeometry;
using dsa::IndexKLayout;
using dsa::MlaCacheGeometry;
using dsa::MlaLayout;

// Runs `f`, expects an InvalidArgument naming `argument`, and returns it for further checks.
template <class F>
dsa::InvalidArgument expect_invalid(F&& f, const std::string& argument) {
  try {
    f();
  } catch (const dsa::InvalidArgument& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
    EXPECT_EQ(std::string(e.what()), e.argument() + ": " + e.rule());
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected dsa::InvalidArgument(" << argument << "), got " << e.what();
    return dsa::InvalidArgument("?", "?");
  }
  ADD_FAILURE() << "expected dsa::InvalidArgument(" << argument << "), nothing thrown";
  return dsa::InvalidArgument("?", "?");
}

void put_f32(std::uint8_t* p, float v) {  // little-endian, by hand
  std::uint32_t b;
  std::memcpy(&b, &v, 4);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(b >> (8 * i));
}
void put_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}

// ---------------------------------------------------------------------------------------------
// §8: the error type.

TEST(Spec8_Errors, InvalidArgumentReadsArgumentColonRule) {
  const dsa::InvalidArgument e("cache.page_tokens", "must be ≥ 1 (got 0)");
  EXPECT_EQ(e.argument(), "cache.page_tokens");
  EXPECT_EQ(e.rule(), "must be ≥ 1 (got 0)");
  EXPECT_STREQ(e.what(), "cache.page_tokens: must be ≥ 1 (got 0)");
  const std::invalid_argument& base = e;  // catchable as the standard exception
  EXPECT_STREQ(base.what(), "cache.page_tokens: must be ≥ 1 (got 0)");
}

TEST(Spec8_Errors, LayoutMismatchNamesBothLayouts) {
  const dsa::LayoutMismatch e("cache", "V32", "MODEL1");
  const dsa::InvalidArgument& base = e;
  EXPECT_EQ(base.argument(), "cache");
  EXPECT_NE(std::string(e.what()).find("'V32'"), std::string::npos);
  EXPECT_NE(std::string(e.what()).find("'MODEL1'"), std::string::npos);
  EXPECT_EQ(std::string(e.what()).rfind("cache: ", 0), 0u);
}

TEST(Spec6_1_LayoutTags, RequireLayoutRejectsAnotherLayoutNamingBoth) {
  const auto g = MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 2, 64);
  EXPECT_NO_THROW(dsa::require_layout(g, MlaLayout::V32, "cache"));
  for (MlaLayout other : {MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16}) {
    try {
      dsa::require_layout(g, other, "extra_cache");
      ADD_FAILURE() << "no throw";
    } catch (const dsa::LayoutMismatch& e) {
      EXPECT_EQ(e.argument(), "extra_cache");
      EXPECT_NE(e.rule().find("'V32'"), std::string::npos) << e.what();
      EXPECT_NE(e.rule().find(std::string("'") + dsa::to_string(other) + "'"), std::string::npos) << e.what();
    }
  }
  const auto k = IndexKGeometry::packed(IndexKLayout::preshuffle, Fp8Format::e4m3fn, 1, 64, 128);
  EXPECT_NO_THROW(dsa::require_layout(k, IndexKLayout::preshuffle, "k_cache"));
  try {
    dsa::require_layout(k, IndexKLayout::standard, "k_cache");
    ADD_FAILURE() << "no throw";
  } catch (const dsa::LayoutMismatch& e) {
    EXPECT_EQ(e.argument(), "k_cache");
    EXPECT_NE(e.rule().find("'preshuffle'"), std::string::npos) << e.what();
    EXPECT_NE(e.rule().find("'standard'"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Geometry.

TEST(Spec2_Geometry, PackedPageBytesPerLayout) {
  EXPECT_EQ(MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 3, 64).page_bytes(), 41984);
  EXPECT_EQ(MlaCacheGeometry::packed(MlaLayout::MODEL1, Fp8Format::e4m3fn, 3, 64).page_bytes(), 37440);
  EXPECT_EQ(MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 3, 64).page_bytes(), 36864);
  EXPECT_EQ(MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 3, 64).scale_page_bytes(), 512);
  EXPECT_EQ(MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 3, 64).page_bytes(), 73728);
  EXPECT_EQ(MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 3, 64, 512).page_bytes(), 65536);
  for (MlaLayout l : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::BF16})
    EXPECT_EQ(MlaCacheGeometry::packed(l, Fp8Format::e4m3fn, 3, 64).scale_page_bytes(), 0);
}

TEST(Spec2_Geometry, TensorBytesAreExactWithAStrideBeyondThePage) {
  auto g = MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 3, 2);
  EXPECT_EQ(g.block_stride_bytes, 1312);
  EXPECT_EQ(g.values_bytes(), 3 * 1312);
  g.block_stride_bytes = 2000;
  EXPECT_EQ(g.values_bytes(), 2 * 2000 + 1312);  // no slack after the last page
  EXPECT_EQ(g.scales_bytes(), 0);
  EXPECT_EQ(g.capacity_tokens(), 6);
  EXPECT_EQ(g.dim_qk(), 576);
  EXPECT_EQ(g.dim_v(), 512);
  auto s = MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 4, 3);
  s.scale_block_stride_bytes = 40;
  EXPECT_EQ(s.values_bytes(), 4 * 1728);
  EXPECT_EQ(s.scales_bytes(), 3 * 40 + 24);
  EXPECT_EQ(s.dim_qk(), 512);
  g.num_blocks = 0;
  EXPECT_EQ(g.values_bytes(), 0);
  const auto k = IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, 3, 64, 128);
  EXPECT_EQ(k.page_bytes(), 8448);
  EXPECT_EQ(k.block_stride_bytes, 8448);
  EXPECT_EQ(k.bytes(), 3 * 8448);
  EXPECT_EQ(k.capacity_tokens(), 192);
  const dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 2, 5));
  EXPECT_EQ(buf.values.size(), 2u * 2880);
  EXPECT_EQ(buf.scales.size(), 2u * 40);
}

TEST(Spec6_1_Geometry, PackedIndexKGeometryIsAlwaysValid) {
  // SPEC §6.1: the page stride is a multiple of 4 even when P·(D+4) is not.
  for (int P : {1, 3, 7, 16, 64}) {
    for (int D : {1, 13, 16, 128}) {
      const auto g = IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, 2, P, D);
      EXPECT_NO_THROW(dsa::validate(g, "cache")) << P << " " << D;
      EXPECT_GE(g.block_stride_bytes, static_cast<std::int64_t>(P) * (D + 4));
      EXPECT_EQ(g.block_stride_bytes % 4, 0);
      EXPECT_LT(g.block_stride_bytes - static_cast<std::int64_t>(P) * (D + 4), 4);
      EXPECT_NO_THROW(dsa::IndexKCacheBuffer{g});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// §8 validation of geometries and views.

TEST(Spec8_MlaCacheValidation, EveryRuleNamesItsArgument) {
  const auto good = MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 2, 16);
  EXPECT_NO_THROW(dsa::validate(good, "cache"));
  auto g = good;
  g.num_blocks = -1;
  expect_invalid([&] { dsa::validate(g, "cache"); }, "cache.num_blocks");
  g = good;
  g.page_tokens = 0;
  expect_invalid([&] { dsa::validate(g, "extra_cache"); }, "extra_cache.page_tokens");
  g.page_tokens = -3;
  expect_invalid([&] { dsa::validate(g, "cache"); }, "cache.page_tokens");
  g = good;
  g.block_stride_bytes = good.page_bytes() - 1;
  expect_invalid([&] { dsa::validate(g, "cache"); }, "cache.block_stride_bytes");
  g = MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 2, 16, 100);
  expect_invalid([&] { dsa::validate(g, "cache"); }, "cache.bf16_dim_qk");
  g = MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 2, 16);
  EXPECT_NO_THROW(dsa::validate(g, "cache"));
  g.scale_block_stride_bytes = 127;
  expect_invalid([&] { dsa::validate(g, "cache"); }, "cache.scale_block_stride_bytes");
  // The buffer constructor validates too.
  g = good;
  g.page_tokens = 0;
  expect_invalid([&] { dsa::MlaCacheBuffer b(g); }, "cache.page_tokens");
}

TEST(Spec8_MlaCacheValidation, GeometriesBeyondInt64BytesAreRejectedWithoutOverflow) {
  constexpr std::int64_t big = std::numeric_limits<std::int64_t>::max();
  for (MlaLayout l : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16}) {
    auto g = MlaCacheGeometry::packed(l, Fp8Format::e4m3fn, big / 1000, 64);
    expect_invalid([&] { dsa::validate(g, "cache"); }, "cache.num_blocks");
    g = MlaCacheGeometry::packed(l, Fp8Format::e4m3fn, 2, 64);
    g.block_stride_bytes = big;
    expect_invalid([&] { dsa::validate(g, "cache"); }, "cache.num_blocks");
    g.num_blocks = 1;  // one page: the stride is never multiplied
    EXPECT_NO_THROW(dsa::validate(g, "cache"));
  }
  auto s = MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 3, 64);
  s.scale_block_stride_bytes = big / 2;
  expect_invalid([&] { dsa::validate(s, "cache"); }, "cache.num_blocks");
  auto k = IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, big / 1000, 64, 128);
  expect_invalid([&] { dsa::validate(k, "k_cache"); }, "k_cache.num_blocks");
  k.num_blocks = 3;
  k.block_stride_bytes = big - 3;  // a multiple of 4
  expect_invalid([&] { dsa::validate(k, "k_cache"); }, "k_cache.num_blocks");
}

TEST(Spec8_MlaCacheValidation, ShortBuffersAreRejected) {
  for (MlaLayout l : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16}) {
    dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(l, Fp8Format::e4m3fn, 3, 5));
    const dsa::MlaCacheView full = buf.view();
    EXPECT_NO_THROW(dsa::validate(full, "cache"));
    dsa::MlaCacheView v = full;
    v.values = v.values.first(v.values.size() - 1);
    expect_invalid([&] { dsa::validate(v, "cache"); }, "cache.values");
    if (l == MlaLayout::MODEL1_SPLIT) {
      v = full;
      v.scales = v.scales.first(v.scales.size() - 1);
      expect_invalid([&] { dsa::validate(v, "cache"); }, "cache.scales");
    }
  }
}

TEST(Spec8_IndexKCacheValidation, EveryRuleNamesItsArgument) {
  const auto good = IndexKGeometry::packed(IndexKLayout::preshuffle, Fp8Format::e4m3fn, 2, 64, 128);
  EXPECT_NO_THROW(dsa::validate(good, "k_cache"));
  auto g = good;
  g.num_blocks = -1;
  expect_invalid([&] { dsa::validate(g, "k_cache"); }, "k_cache.num_blocks");
  g = good;
  g.page_tokens = 0;
  expect_invalid([&] { dsa::validate(g, "k_cache"); }, "k_cache.page_tokens");
  g = good;
  g.head_dim = 0;
  expect_invalid([&] { dsa::validate(g, "k_cache"); }, "k_cache.head_dim");
  g = good;
  g.page_tokens = 24;
  g.block_stride_bytes = 1 << 20;
  expect_invalid([&] { dsa::validate(g, "k_cache"); }, "k_cache.page_tokens");
  g.layout = IndexKLayout::standard;  // standard takes any P
  EXPECT_NO_THROW(dsa::validate(g, "k_cache"));
  g = good;
  g.head_dim = 120;
  expect_invalid([&] { dsa::validate(g, "k_cache"); }, "k_cache.head_dim");
  g.layout = IndexKLayout::standard;
  EXPECT_NO_THROW(dsa::validate(g, "k_cache"));
  g = good;
  g.block_stride_bytes = good.page_bytes() - 4;
  expect_invalid([&] { dsa::validate(g, "k_cache"); }, "k_cache.block_stride_bytes");
  g.block_stride_bytes = good.page_bytes() + 2;
  expect_invalid([&] { dsa::validate(g, "k_cache"); }, "k_cache.block_stride_bytes");
  g.block_stride_bytes = good.page_bytes() + 4;
  EXPECT_NO_THROW(dsa::validate(g, "k_cache"));
  dsa::IndexKCacheBuffer buf(good);
  dsa::IndexKCacheView v = buf.view();
  v.bytes = v.bytes.first(v.bytes.size() - 1);
  expect_invalid([&] { dsa::validate(v, "k_cache"); }, "k_cache.bytes");
}

// ---------------------------------------------------------------------------------------------
// Readers on hand-written bytes.

TEST(Spec2_1_Readers, V32TokenFromHandWrittenBytes) {
  auto g = MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 2, 3);
  g.block_stride_bytes = 2000;  // 3·656 = 1968 plus 32 bytes of gap
  dsa::MlaCacheBuffer buf(g);
  // Token (block 1, t 2) starts at 2000 + 2·656 = 3312.
  std::uint8_t* tok = buf.values.data() + 3312;
  tok[0] = 0x38;    // 1.0 (e4m3fn: exponent field 7)
  tok[127] = 0xC4;  // −3.0 = −1.5·2^1
  tok[128] = 0x01;  // 2^−9 (smallest subnormal)
  tok[300] = 0x7E;  // 448
  tok[511] = 0x80;  // −0
  put_f32(tok + 512, 0.5f);   // scale of dims [0, 128)
  put_f32(tok + 516, 2.0f);   // [128, 256)
  put_f32(tok + 520, 0.25f);  // [256, 384)
  put_f32(tok + 524, 8.0f);   // [384, 512)
  put_u16(tok + 528, 0x3F80);  // dim 512: 1.0
  put_u16(tok + 654, 0xC040);  // dim 575: −3.0
  float scales[8];
  ASSERT_EQ(dsa::read_mla_scales(buf.view(), 1, 2, scales), 4);
  EXPECT_EQ(scales[0], 0.5f);
  EXPECT_EQ(scales[1], 2.0f);
  EXPECT_EQ(scales[2], 0.25f);
  EXPECT_EQ(scales[3], 8.0f);
  std::vector<float> out(576, 123.0f);
  dsa::read_mla_token(buf.view(), 1, 2, dsa::ReaderModel::exact_fp32(), out.data());
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[127], -1.5f);
  EXPECT_EQ(out[128], std::ldexp(1.0f, -8));
  EXPECT_EQ(out[300], 112.0f);
  EXPECT_EQ(out[511], 0.0f);
  EXPECT_TRUE(std::signbit(out[511]));
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(out[512], 1.0f);
  EXPECT_EQ(out[513], 0.0f);
  EXPECT_EQ(out[575], -3.0f);
  // Neighbouring tokens read as zeros (nothing bled over).
  dsa::read_mla_token(buf.view(), 1, 1, dsa::ReaderModel::exact_fp32(), out.data());
  for (float v : out) ASSERT_EQ(v, 0.0f);
}

TEST(Spec2_2_Readers, Model1TokenFromHandWrittenBytes) {
  dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::MODEL1, Fp8Format::e4m3fnuz, 2, 3));
  // Page 1 starts at 1·page_bytes(3) = 1·1752 → rounded to 4·576 = 2304. Token 1 value row at
  // 2304 + 576, its scale row at 2304 + 3·576 + 8.
  ASSERT_EQ(buf.geo.page_bytes(), 2304);
  std::uint8_t* row = buf.values.data() + 2304 + 576;
  std::uint8_t* srow = buf.values.data() + 2304 + 1728 + 8;
  row[0] = 0x40;    // e4m3fnuz: 2^(8−8) = 1.0
  row[64] = 0x41;   // 1.125
  row[447] = 0xC8;  // −2^(9−8) = −2
  put_u16(row + 448, 0x4000);  // dim 448: 2.0
  put_u16(row + 574, 0xBF80);  // dim 511: −1.0
  srow[0] = 127;       // 1.0
  srow[1] = 127 - 3;   // 2^−3
  srow[6] = 127 + 10;  // 2^10
  srow[7] = 0xAA;      // pad byte: never read
  float scales[8];
  ASSERT_EQ(dsa::read_mla_scales(buf.view(), 1, 1, scales), 7);
  EXPECT_EQ(scales[0], 1.0f);
  EXPECT_EQ(scales[1], 0.125f);
  EXPECT_EQ(scales[2], std::ldexp(1.0f, -127));  // code 0
  EXPECT_EQ(scales[6], 1024.0f);
  std::vector<float> out(512);
  dsa::read_mla_token(buf.view(), 1, 1, dsa::ReaderModel::staged_bf16(), out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[64], 0.140625f);
  EXPECT_EQ(out[447], -2048.0f);
  EXPECT_EQ(out[448], 2.0f);
  EXPECT_EQ(out[511], -1.0f);
  EXPECT_EQ(out[449], 0.0f);
}

TEST(Spec2_2_Readers, Model1SplitTokenFromHandWrittenBytes) {
  auto g = MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 2, 3);
  g.scale_block_stride_bytes = 32;
  dsa::MlaCacheBuffer buf(g);
  std::uint8_t* row = buf.values.data() + 1728 + 2 * 576;  // block 1, t 2
  std::uint8_t* srow = buf.scales.data() + 32 + 2 * 8;
  row[100] = 0x38;  // 1.0
  srow[1] = 127 + 2;
  put_u16(row + 448 + 2 * 63, 0x4040);  // dim 511: 3.0
  std::vector<float> out(512);
  dsa::read_mla_token(buf.view(), 1, 2, dsa::ReaderModel::exact_fp32(), out.data());
  EXPECT_EQ(out[100], 4.0f);
  EXPECT_EQ(out[511], 3.0f);
  float scales[8];
  ASSERT_EQ(dsa::read_mla_scales(buf.view(), 1, 2, scales), 7);
  EXPECT_EQ(scales[1], 4.0f);
}

TEST(Spec2_3_Readers, Bf16RowFromHandWrittenBytes) {
  dsa::MlaCacheBuffer buf(MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 2, 4, 512));
  std::uint8_t* row = buf.values.data() + 4096 + 3 * 1024;  // block 1, t 3
  put_u16(row, 0x3F80);
  put_u16(row + 1022, 0xC2F7);  // −123.5
  std::vector<float> out(512);
  dsa::read_mla_token(buf.view(), 1, 3, dsa::ReaderModel::exact_fp32(), out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[511], -123.5f);
  float scales[8];
  EXPECT_EQ(dsa::read_mla_scales(buf.view(), 1, 3, scales), 0);
}

TEST(Spec6_1_Readers, IndexKCodesAndScalesFromHandWrittenBytes) {
  for (IndexKLayout l : {IndexKLayout::standard, IndexKLayout::preshuffle}) {
    auto g = IndexKGeometry::packed(l, Fp8Format::e4m3fn, 2, 32, 32);
    g.block_stride_bytes = 1200;  // page 32·36 = 1152, plus 48 B of gap
    dsa::IndexKCacheBuffer buf(g);
    // (block 1, t 17, d 21): standard 17·32 + 21 = 565; preshuffle 1·512 + 1·256 + 1·16 + 5 = 789.
    const std::int64_t off = 1200 + (l == IndexKLayout::standard ? 565 : 789);
    buf.bytes[static_cast<std::size_t>(off)] = 0x5A;
    put_f32(buf.bytes.data() + 1200 + 1024 + 4 * 17, 0.375f);
    EXPECT_EQ(dsa::read_index_k_code(buf.view(), 1, 17, 21), 0x5A);
    EXPECT_EQ(dsa::read_index_k_scale(buf.view(), 1, 17), 0.375f);
    EXPECT_EQ(dsa::read_index_k_code(buf.view(), 1, 17, 20), 0x00);
    EXPECT_EQ(dsa::read_index_k_scale(buf.view(), 1, 16), 0.0f);
  }
}

TEST(Spec_ByteHelpers, LittleEndianLoadsAndStores) {
  std::uint8_t b[4];
  dsa::store_f32(b, 1.0f);
  EXPECT_EQ(b[0], 0x00);
  EXPECT_EQ(b[1], 0x00);
  EXPECT_EQ(b[2], 0x80);
  EXPECT_EQ(b[3], 0x3F);
  EXPECT_EQ(dsa::load_f32(b), 1.0f);
  dsa::store_u16(b, 0xC040);
  EXPECT_EQ(b[0], 0x40);
  EXPECT_EQ(b[1], 0xC0);
  EXPECT_EQ(dsa::load_u16(b), 0xC040);
}

}  // namespace
