// SPEC §1 number formats: every code point of bf16, e4m3fn, e4m3fnuz and ue8m0 decoded, and the
// encoders checked against the independent codecs of independent_codecs.hpp on large samples.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "dsa/formats.hpp"
#include "reference/independent_codecs.hpp"

namespace {

using dsa::Fp8Format;
using dsa::Overflow;
using indep::bits_of;
using indep::float_of;

constexpr Fp8Format kFormats[] = {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz};
constexpr Overflow kPolicies[] = {Overflow::saturate, Overflow::nonsat};

bool is_fnuz(Fp8Format f) { return f == Fp8Format::e4m3fnuz; }
const char* name(Overflow p) { return p == Overflow::saturate ? "saturate" : "nonsat"; }

std::string hex32(std::uint32_t b) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", b);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// e4m3fn / e4m3fnuz decoding: every code.

TEST(Spec1_E4m3, EveryCodeDecodesToItsSignExponentMantissaValue) {
  for (Fp8Format f : kFormats) {
    for (int c = 0; c < 256; ++c) {
      const double expected = indep::fp8_value(static_cast<std::uint8_t>(c), is_fnuz(f));
      const float got = dsa::fp8_to_f32(static_cast<std::uint8_t>(c), f);
      if (std::isnan(expected)) {
        EXPECT_TRUE(std::isnan(got)) << dsa::to_string(f) << " code " << c;
        EXPECT_TRUE(dsa::fp8_is_nan(static_cast<std::uint8_t>(c), f));
      } else {
        EXPECT_EQ(bits_of(got), bits_of(static_cast<float>(expected)))
            << dsa::to_string(f) << " code " << c << " expected " << expected << " got " << got;
        EXPECT_FALSE(dsa::fp8_is_nan(static_cast<std::uint8_t>(c), f)) << dsa::to_string(f) << " code " << c;
      }
    }
  }
}

TEST(Spec1_E4m3fn, NanCodesAre0x7FAnd0xFFOnly) {
  for (int c = 0; c < 256; ++c) {
    const bool nan = std::isnan(dsa::fp8_to_f32(static_cast<std::uint8_t>(c), Fp8Format::e4m3fn));
    EXPECT_EQ(nan, c == 0x7F || c == 0xFF) << c;
  }
  EXPECT_EQ(dsa::fp8_nan_code(Fp8Format::e4m3fn), 0x7F);
}

TEST(Spec1_E4m3fnuz, NanCodeIs0x80Only) {
  for (int c = 0; c < 256; ++c) {
    const bool nan = std::isnan(dsa::fp8_to_f32(static_cast<std::uint8_t>(c), Fp8Format::e4m3fnuz));
    EXPECT_EQ(nan, c == 0x80) << c;
  }
  EXPECT_EQ(dsa::fp8_nan_code(Fp8Format::e4m3fnuz), 0x80);
}

TEST(Spec1_E4m3fn, Code0x80IsNegativeZero) {
  const float v = dsa::fp8_to_f32(0x80, Fp8Format::e4m3fn);
  EXPECT_EQ(v, 0.0f);
  EXPECT_TRUE(std::signbit(v));
  EXPECT_EQ(bits_of(dsa::fp8_to_f32(0x00, Fp8Format::e4m3fn)), 0u);
}

TEST(Spec1_E4m3fnuz, NoInfinityAndNoNegativeZero) {
  for (int c = 0; c < 256; ++c) {
    const float v = dsa::fp8_to_f32(static_cast<std::uint8_t>(c), Fp8Format::e4m3fnuz);
    EXPECT_FALSE(std::isinf(v)) << c;
    if (v == 0.0f) {
      EXPECT_EQ(c, 0x00);
    }
  }
}

TEST(Spec1_E4m3fn, NoInfinity) {
  for (int c = 0; c < 256; ++c) EXPECT_FALSE(std::isinf(dsa::fp8_to_f32(static_cast<std::uint8_t>(c), Fp8Format::e4m3fn)));
}

TEST(Spec1_E4m3fn, MaxFinite448Is0x7E) {
  EXPECT_EQ(dsa::fp8_to_f32(0x7E, Fp8Format::e4m3fn), 448.0f);
  EXPECT_EQ(dsa::fp8_to_f32(0xFE, Fp8Format::e4m3fn), -448.0f);
  EXPECT_EQ(dsa::fp8_max(Fp8Format::e4m3fn), 448.0f);
  float largest = 0;
  for (int c = 0; c < 256; ++c) {
    const float v = dsa::fp8_to_f32(static_cast<std::uint8_t>(c), Fp8Format::e4m3fn);
    if (!std::isnan(v)) largest = std::max(largest, std::fabs(v));
  }
  EXPECT_EQ(largest, 448.0f);
}

TEST(Spec1_E4m3fnuz, MaxFinite240Is0x7F) {
  EXPECT_EQ(dsa::fp8_to_f32(0x7F, Fp8Format::e4m3fnuz), 240.0f);
  EXPECT_EQ(dsa::fp8_to_f32(0xFF, Fp8Format::e4m3fnuz), -240.0f);
  EXPECT_EQ(dsa::fp8_max(Fp8Format::e4m3fnuz), 240.0f);
  float largest = 0;
  for (int c = 0; c < 256; ++c) {
    const float v = dsa::fp8_to_f32(static_cast<std::uint8_t>(c), Fp8Format::e4m3fnuz);
    if (!std::isnan(v)) largest = std::max(largest, std::fabs(v));
  }
  EXPECT_EQ(largest, 240.0f);
}

TEST(Spec1_E4m3fn, MinNormalIs2ToMinus6SubnormalStep2ToMinus9) {
  EXPECT_EQ(dsa::fp8_to_f32(0x08, Fp8Format::e4m3fn), std::ldexp(1.0f, -6));
  for (int m = 0; m < 8; ++m)
    EXPECT_EQ(dsa::fp8_to_f32(static_cast<std::uint8_t>(m), Fp8Format::e4m3fn), m * std::ldexp(1.0f, -9)) << m;
}

TEST(Spec1_E4m3fnuz, MinNormalIs2ToMinus7SubnormalStep2ToMinus10) {
  EXPECT_EQ(dsa::fp8_to_f32(0x08, Fp8Format::e4m3fnuz), std::ldexp(1.0f, -7));
  for (int m = 0; m < 8; ++m)
    EXPECT_EQ(dsa::fp8_to_f32(static_cast<std::uint8_t>(m), Fp8Format::e4m3fnuz), m * std::ldexp(1.0f, -10)) << m;
}

TEST(Spec1_E4m3fnuz, SameBitsDecodeToHalfTheE4m3fnValue) {
  int checked = 0;
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    if (dsa::fp8_is_nan(code, Fp8Format::e4m3fn) || dsa::fp8_is_nan(code, Fp8Format::e4m3fnuz)) continue;
    EXPECT_EQ(dsa::fp8_to_f32(code, Fp8Format::e4m3fnuz), dsa::fp8_to_f32(code, Fp8Format::e4m3fn) / 2) << c;
    ++checked;
  }
  EXPECT_EQ(checked, 253);  // 256 − {0x7F, 0xFF (fn NaN), 0x80 (fnuz NaN)}
}

TEST(Spec1_E4m3, TraitsMatchTheTable) {
  const auto fn = dsa::fp8_traits(Fp8Format::e4m3fn);
  EXPECT_EQ(fn.bias, 7);
  EXPECT_EQ(fn.max_code, 0x7E);
  EXPECT_EQ(fn.nan_code, 0x7F);
  EXPECT_TRUE(fn.has_negative_zero);
  const auto fnuz = dsa::fp8_traits(Fp8Format::e4m3fnuz);
  EXPECT_EQ(fnuz.bias, 8);
  EXPECT_EQ(fnuz.max_code, 0x7F);
  EXPECT_EQ(fnuz.nan_code, 0x80);
  EXPECT_FALSE(fnuz.has_negative_zero);
  EXPECT_STREQ(dsa::to_string(Fp8Format::e4m3fn), "e4m3fn");
  EXPECT_STREQ(dsa::to_string(Fp8Format::e4m3fnuz), "e4m3fnuz");
}

// ---------------------------------------------------------------------------------------------
// bf16 decoding and round trips: every code.

TEST(Spec1_Bf16, EveryCodeDecodesToTheFp32WithThoseTopBits) {
  for (std::uint32_t c = 0; c < 65536; ++c) {
    const float got = dsa::bf16_to_f32(static_cast<std::uint16_t>(c));
    ASSERT_EQ(bits_of(got), c << 16) << c;
    const double expected = indep::bf16_value(static_cast<std::uint16_t>(c));
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(got)) << c;
    } else {
      ASSERT_EQ(static_cast<double>(got), expected) << c;
      ASSERT_EQ(std::signbit(got), std::signbit(expected)) << c;
    }
  }
}

TEST(Spec1_Bf16, EncodeOfDecodeIsIdentityForNonNanCodes) {
  for (std::uint32_t c = 0; c < 65536; ++c) {
    const auto code = static_cast<std::uint16_t>(c);
    const float v = dsa::bf16_to_f32(code);
    if (std::isnan(v)) {
      for (Overflow p : kPolicies) {
        const std::uint16_t back = dsa::f32_to_bf16(v, p);
        ASSERT_TRUE(std::isnan(dsa::bf16_to_f32(back))) << "NaN stays NaN: " << c << " " << name(p);
        ASSERT_EQ(back & 0x8000, code & 0x8000) << "NaN keeps its sign: " << c;
      }
      continue;
    }
    ASSERT_EQ(dsa::f32_to_bf16(v, Overflow::nonsat), code) << c;
    if (!std::isinf(v)) {
      ASSERT_EQ(dsa::f32_to_bf16(v, Overflow::saturate), code) << c;
    }
  }
}

// The deterministic fp32 sample for bf16 rounding: every top-16-bit pattern with the low halves
// that matter for RNE (exact, just above, just below and at the tie), plus random bit patterns.
std::vector<float> bf16_sample() {
  std::vector<float> xs;
  const std::uint32_t lows[] = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x4000, 0xC000};
  for (std::uint32_t hi = 0; hi < 65536; ++hi)
    for (std::uint32_t lo : lows) xs.push_back(float_of((hi << 16) | lo));
  std::mt19937_64 rng(0xB16B16);
  for (int i = 0; i < 1'000'000; ++i) xs.push_back(float_of(static_cast<std::uint32_t>(rng())));
  // The overflow threshold: FLT_MAX and the values around the bf16 tie above 0x7F7F.
  for (std::uint32_t b : {0x7F7F7FFFu, 0x7F7F8000u, 0x7F7F8001u, 0x7F7FFFFFu, 0x7F7F0000u, 0x7F800000u,
                          0x00000000u, 0x00000001u, 0x007FFFFFu, 0x00800000u, 0x7FC00000u, 0x7F800001u,
                          0x7FFFFFFFu, 0x00008000u, 0x00018000u, 0x00008001u}) {
    xs.push_back(float_of(b));
    xs.push_back(float_of(b | 0x80000000u));
  }
  return xs;
}

TEST(Spec1_Bf16, Fp32ToBf16IsRoundToNearestEvenOnALargeSample) {
  const std::vector<float> xs = bf16_sample();
  ASSERT_GE(xs.size(), 1'000'000u);
  for (Overflow p : kPolicies) {
    std::size_t failures = 0;
    for (float x : xs) {
      const std::uint16_t got = dsa::f32_to_bf16(x, p);
      if (std::isnan(x)) {
        if (!std::isnan(dsa::bf16_to_f32(got)) || (got >> 15) != (bits_of(x) >> 31)) {
          ADD_FAILURE() << name(p) << ": NaN input " << hex32(bits_of(x)) << " gave " << got;
          ++failures;
        }
      } else {
        const std::uint16_t expected = indep::bf16_encode(x, p == Overflow::saturate);
        if (got != expected) {
          ADD_FAILURE() << name(p) << ": x = " << hex32(bits_of(x)) << " (" << x << ") expected 0x" << std::hex
                        << expected << " got 0x" << got << std::dec;
          ++failures;
        }
      }
      if (failures > 20) FAIL() << "too many failures";
    }
  }
}

TEST(Spec1_Bf16, SaturateClampsToMaxFiniteIncludingInfinities) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(dsa::f32_to_bf16(inf, Overflow::saturate), 0x7F7F);
  EXPECT_EQ(dsa::f32_to_bf16(-inf, Overflow::saturate), 0xFF7F);
  EXPECT_EQ(dsa::f32_to_bf16(std::numeric_limits<float>::max(), Overflow::saturate), 0x7F7F);
  EXPECT_EQ(dsa::f32_to_bf16(-std::numeric_limits<float>::max(), Overflow::saturate), 0xFF7F);
  // 0x7F7F8000 is the tie between 0x7F7F and the (virtual) next code 0x7F80 — 0x7F7F is odd, so
  // RNE goes up, which is an overflow.
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x7F7F8000u), Overflow::saturate), 0x7F7F);
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x7F7F7FFFu), Overflow::saturate), 0x7F7F);
}

TEST(Spec1_Bf16, NonsatOverflowsToInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(dsa::f32_to_bf16(inf, Overflow::nonsat), 0x7F80);
  EXPECT_EQ(dsa::f32_to_bf16(-inf, Overflow::nonsat), 0xFF80);
  EXPECT_EQ(dsa::f32_to_bf16(std::numeric_limits<float>::max(), Overflow::nonsat), 0x7F80);
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x7F7F8000u), Overflow::nonsat), 0x7F80);
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x7F7F7FFFu), Overflow::nonsat), 0x7F7F);
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0xFF7F8000u), Overflow::nonsat), 0xFF80);
}

TEST(Spec1_Bf16, KnownTiesAndZeros) {
  EXPECT_EQ(dsa::f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x3F808000u)), 0x3F80);  // tie, 0x3F80 even → down
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x3F818000u)), 0x3F82);  // tie, 0x3F81 odd → up
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x3F808001u)), 0x3F81);
  EXPECT_EQ(dsa::f32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(dsa::f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(dsa::round_to_bf16(float_of(0x3F818000u)), float_of(0x3F820000u));
  // The smallest fp32 subnormal is below half a bf16 subnormal step: rounds to ±0.
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x00000001u)), 0x0000);
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x80000001u)), 0x8000);
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x00008000u)), 0x0000);  // tie at half the step → even 0
  EXPECT_EQ(dsa::f32_to_bf16(float_of(0x00018000u)), 0x0002);  // tie above code 1 → even 2
}

// ---------------------------------------------------------------------------------------------
// fp32 → fp8, both formats and both policies.

// Every midpoint between adjacent fp8 magnitudes (and the one past the max) with up to 3 fp32
// ulps on each side, every fp8 value itself with its neighbours, both signs; then fp32
// subnormals, the fp8 subnormal range, random values over the fp8 range and random bit patterns.
std::vector<float> fp8_sample(const indep::Fp8Table& t) {
  std::vector<float> xs;
  auto push_around = [&](double v, int ulps) {
    float x = static_cast<float>(v);
    EXPECT_EQ(static_cast<double>(x), v);  // midpoints and fp8 values are exact in fp32
    float up = x, down = x;
    xs.push_back(x);
    xs.push_back(-x);
    for (int i = 0; i < ulps; ++i) {
      up = std::nextafter(up, std::numeric_limits<float>::infinity());
      down = std::nextafter(down, -std::numeric_limits<float>::infinity());
      for (float y : {up, down}) {
        xs.push_back(y);
        xs.push_back(-y);
      }
    }
  };
  for (int k = 0; k <= t.max_code; ++k) {
    const double hi = k < t.max_code ? t.value[k + 1] : t.beyond;
    push_around((t.value[k] + hi) / 2, 3);
    push_around(t.value[k], 2);
  }
  push_around(t.beyond, 2);
  // fp32 subnormals and tiny normals.
  for (std::uint32_t b : {1u, 2u, 3u, 0x7FFFFFu, 0x400000u, 0x800000u, 0x800001u}) {
    xs.push_back(float_of(b));
    xs.push_back(float_of(b | 0x80000000u));
  }
  std::mt19937_64 rng(t.fnuz ? 0xF8F8u : 0xE4E3u);
  for (int i = 0; i < 10'000; ++i) xs.push_back(float_of(static_cast<std::uint32_t>(rng() & 0x807FFFFFu)));
  // Specials.
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                  float_of(0x7FC00000u), float_of(0xFFC00000u), float_of(0x7F800001u), float_of(0xFFFFFFFFu)})
    xs.push_back(x);
  // Random magnitudes spread over the fp8 range and a little beyond: exponent uniform in [−24, 10].
  std::uniform_int_distribution<int> exp_dist(-24, 10);
  for (int i = 0; i < 700'000; ++i) {
    const std::uint32_t sign = static_cast<std::uint32_t>(rng() & 1u) << 31;
    const std::uint32_t e = static_cast<std::uint32_t>(exp_dist(rng) + 127);
    const std::uint32_t m = static_cast<std::uint32_t>(rng()) & 0x7FFFFFu;
    xs.push_back(float_of(sign | (e << 23) | m));
  }
  // Random bit patterns over the whole fp32 space.
  for (int i = 0; i < 400'000; ++i) xs.push_back(float_of(static_cast<std::uint32_t>(rng())));
  return xs;
}

TEST(Spec1_Fp8Encode, RoundToNearestEvenMatchesTableSearchOnALargeSample) {
  for (Fp8Format f : kFormats) {
    const indep::Fp8Table t = indep::make_fp8_table(is_fnuz(f));
    const std::vector<float> xs = fp8_sample(t);
    ASSERT_GE(xs.size(), 1'000'000u);
    for (Overflow p : kPolicies) {
      int failures = 0;
      for (float x : xs) {
        const std::uint8_t got = dsa::f32_to_fp8(x, f, p);
        const std::uint8_t expected = indep::fp8_encode(x, t, p == Overflow::saturate);
        if (got != expected) {
          ADD_FAILURE() << dsa::to_string(f) << " " << name(p) << ": x = " << hex32(bits_of(x)) << " (" << x
                        << ") expected " << int(expected) << " got " << int(got);
          if (++failures > 20) FAIL() << "too many failures";
        }
      }
    }
  }
}

TEST(Spec1_Fp8Encode, EveryCodeRoundTrips) {
  for (Fp8Format f : kFormats) {
    for (Overflow p : kPolicies) {
      for (int c = 0; c < 256; ++c) {
        const auto code = static_cast<std::uint8_t>(c);
        const float v = dsa::fp8_to_f32(code, f);
        const std::uint8_t back = dsa::f32_to_fp8(v, f, p);
        if (std::isnan(v)) {
          EXPECT_EQ(back, dsa::fp8_nan_code(f)) << c;
        } else {
          EXPECT_EQ(back, code) << dsa::to_string(f) << " " << name(p) << " " << c;
        }
      }
    }
  }
}

TEST(Spec1_Fp8Encode, E4m3fnOverflowThresholdIs464) {
  const auto fn = Fp8Format::e4m3fn;
  const float above = std::nextafter(464.0f, 1000.0f), below = std::nextafter(464.0f, 0.0f);
  for (float s : {1.0f, -1.0f}) {
    const std::uint8_t sign = s < 0 ? 0x80 : 0x00;
    // 464 is the tie between 448 (mantissa 6, even) and the virtual 480: RNE keeps 448.
    EXPECT_EQ(dsa::f32_to_fp8(s * 464.0f, fn, Overflow::saturate), sign | 0x7E);
    EXPECT_EQ(dsa::f32_to_fp8(s * 464.0f, fn, Overflow::nonsat), sign | 0x7E);
    EXPECT_EQ(dsa::f32_to_fp8(s * below, fn, Overflow::nonsat), sign | 0x7E);
    EXPECT_EQ(dsa::f32_to_fp8(s * above, fn, Overflow::saturate), sign | 0x7E);
    EXPECT_EQ(dsa::f32_to_fp8(s * above, fn, Overflow::nonsat), 0x7F);
    EXPECT_EQ(dsa::f32_to_fp8(s * 480.0f, fn, Overflow::nonsat), 0x7F);
    EXPECT_EQ(dsa::f32_to_fp8(s * 1e30f, fn, Overflow::saturate), sign | 0x7E);
  }
}

TEST(Spec1_Fp8Encode, E4m3fnuzOverflowThresholdIs248) {
  const auto fnuz = Fp8Format::e4m3fnuz;
  const float below = std::nextafter(248.0f, 0.0f);
  for (float s : {1.0f, -1.0f}) {
    const std::uint8_t sign = s < 0 ? 0x80 : 0x00;
    EXPECT_EQ(dsa::f32_to_fp8(s * below, fnuz, Overflow::nonsat), sign | 0x7F);
    EXPECT_EQ(dsa::f32_to_fp8(s * below, fnuz, Overflow::saturate), sign | 0x7F);
    // 248 is the tie between 240 (mantissa 7, odd) and the virtual 256: RNE goes up → overflow.
    EXPECT_EQ(dsa::f32_to_fp8(s * 248.0f, fnuz, Overflow::nonsat), 0x80);
    EXPECT_EQ(dsa::f32_to_fp8(s * 248.0f, fnuz, Overflow::saturate), sign | 0x7F);
    EXPECT_EQ(dsa::f32_to_fp8(s * 1e30f, fnuz, Overflow::saturate), sign | 0x7F);
  }
}

TEST(Spec1_Fp8Encode, ZerosAndNegativeZero) {
  EXPECT_EQ(dsa::f32_to_fp8(0.0f, Fp8Format::e4m3fn), 0x00);
  EXPECT_EQ(dsa::f32_to_fp8(-0.0f, Fp8Format::e4m3fn), 0x80);
  EXPECT_EQ(dsa::f32_to_fp8(0.0f, Fp8Format::e4m3fnuz), 0x00);
  EXPECT_EQ(dsa::f32_to_fp8(-0.0f, Fp8Format::e4m3fnuz), 0x00);  // 0x80 would be NaN
  // Negative values that round to zero.
  for (Overflow p : kPolicies) {
    EXPECT_EQ(dsa::f32_to_fp8(-std::ldexp(1.0f, -11), Fp8Format::e4m3fnuz, p), 0x00);
    EXPECT_EQ(dsa::f32_to_fp8(-std::ldexp(1.0f, -11), Fp8Format::e4m3fn, p), 0x80);
    EXPECT_EQ(dsa::f32_to_fp8(-float_of(1u), Fp8Format::e4m3fnuz, p), 0x00);
    EXPECT_EQ(dsa::f32_to_fp8(-float_of(1u), Fp8Format::e4m3fn, p), 0x80);
    // Half the smallest subnormal is a tie with 0 (even): rounds to zero; just above rounds up.
    EXPECT_EQ(dsa::f32_to_fp8(-std::ldexp(1.0f, -11), Fp8Format::e4m3fnuz, p), 0x00);
    EXPECT_EQ(dsa::f32_to_fp8(std::ldexp(1.0f, -10), Fp8Format::e4m3fn, p), 0x00);
    EXPECT_EQ(dsa::f32_to_fp8(std::nextafter(std::ldexp(1.0f, -10), 1.0f), Fp8Format::e4m3fn, p), 0x01);
    EXPECT_EQ(dsa::f32_to_fp8(-std::nextafter(std::ldexp(1.0f, -11), 1.0f), Fp8Format::e4m3fnuz, p), 0x81);
  }
}

TEST(Spec1_Fp8Encode, NanGivesTheCanonicalNanCode) {
  for (Overflow p : kPolicies) {
    for (std::uint32_t b : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFFFFFFFFu, 0x7FBFFFFFu}) {
      EXPECT_EQ(dsa::f32_to_fp8(float_of(b), Fp8Format::e4m3fn, p), 0x7F) << hex32(b);
      EXPECT_EQ(dsa::f32_to_fp8(float_of(b), Fp8Format::e4m3fnuz, p), 0x80) << hex32(b);
    }
  }
}

TEST(Spec1_Fp8Encode, InfinitySaturatesToMaxOrBecomesNan) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(dsa::f32_to_fp8(inf, Fp8Format::e4m3fn, Overflow::saturate), 0x7E);
  EXPECT_EQ(dsa::f32_to_fp8(-inf, Fp8Format::e4m3fn, Overflow::saturate), 0xFE);
  EXPECT_EQ(dsa::f32_to_fp8(inf, Fp8Format::e4m3fnuz, Overflow::saturate), 0x7F);
  EXPECT_EQ(dsa::f32_to_fp8(-inf, Fp8Format::e4m3fnuz, Overflow::saturate), 0xFF);
  EXPECT_EQ(dsa::f32_to_fp8(inf, Fp8Format::e4m3fn, Overflow::nonsat), 0x7F);
  EXPECT_EQ(dsa::f32_to_fp8(-inf, Fp8Format::e4m3fn, Overflow::nonsat), 0x7F);
  EXPECT_EQ(dsa::f32_to_fp8(inf, Fp8Format::e4m3fnuz, Overflow::nonsat), 0x80);
  EXPECT_EQ(dsa::f32_to_fp8(-inf, Fp8Format::e4m3fnuz, Overflow::nonsat), 0x80);
}

TEST(Spec1_Fp8Encode, DefaultPolicyIsSaturate) {
  EXPECT_EQ(dsa::f32_to_fp8(1000.0f, Fp8Format::e4m3fn), 0x7E);
  EXPECT_EQ(dsa::f32_to_fp8(-1000.0f, Fp8Format::e4m3fnuz), 0xFF);
}

// ---------------------------------------------------------------------------------------------
// ue8m0.

TEST(Spec1_Ue8m0, EveryCodeDecodesToTwoToTheCodeMinus127) {
  for (int c = 0; c < 255; ++c) {
    const float v = dsa::ue8m0_to_f32(static_cast<std::uint8_t>(c));
    EXPECT_EQ(static_cast<double>(v), std::ldexp(1.0, c - 127)) << c;
  }
  EXPECT_EQ(dsa::ue8m0_to_f32(0x00), std::ldexp(1.0f, -127));
  EXPECT_EQ(bits_of(dsa::ue8m0_to_f32(0x00)), 0x00400000u);  // an fp32 subnormal
  EXPECT_EQ(dsa::ue8m0_to_f32(0x7F), 1.0f);
  EXPECT_EQ(dsa::ue8m0_to_f32(0xFE), std::ldexp(1.0f, 127));
  EXPECT_TRUE(std::isnan(dsa::ue8m0_to_f32(0xFF)));
}

TEST(Spec1_Ue8m0, Exp2iIsExactOverTheWholeFp32Range) {
  for (int e = -149; e <= 127; ++e) EXPECT_EQ(static_cast<double>(dsa::exp2i(e)), std::ldexp(1.0, e)) << e;
}

std::vector<float> ue8m0_sample() {
  std::vector<float> xs;
  for (int e = -149; e <= 127; ++e) {
    const float p = std::ldexp(1.0f, e);
    for (float v : {p, std::nextafter(p, 0.0f), std::nextafter(p, std::numeric_limits<float>::infinity())}) xs.push_back(v);
    if (e < 127) {
      const float mid = 1.5f * p;  // the tie of `nearest`
      for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, std::numeric_limits<float>::infinity())}) xs.push_back(v);
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, inf, -inf, -1.0f, -1e-40f, std::numeric_limits<float>::max(), float_of(0x7FC00000u),
                  float_of(0xFFC00000u), float_of(1u)})
    xs.push_back(v);
  std::mt19937_64 rng(0xE8E0);
  for (int i = 0; i < 1'000'000; ++i) xs.push_back(float_of(static_cast<std::uint32_t>(rng())));
  return xs;
}

TEST(Spec1_Ue8m0, EncodeUpDownNearestMatchesFrexpDerivation) {
  const std::vector<float> xs = ue8m0_sample();
  const std::pair<dsa::Ue8m0Rounding, indep::Pow2Round> modes[] = {
      {dsa::Ue8m0Rounding::up, indep::Pow2Round::up},
      {dsa::Ue8m0Rounding::down, indep::Pow2Round::down},
      {dsa::Ue8m0Rounding::nearest, indep::Pow2Round::nearest}};
  for (auto [mode, imode] : modes) {
    for (Overflow p : kPolicies) {
      int failures = 0;
      for (float x : xs) {
        const std::uint8_t got = dsa::f32_to_ue8m0(x, mode, p);
        const std::uint8_t expected = indep::ue8m0_encode(x, imode, p == Overflow::saturate);
        if (got != expected) {
          ADD_FAILURE() << "mode " << int(mode) << " " << name(p) << ": x = " << hex32(bits_of(x)) << " (" << x
                        << ") expected " << int(expected) << " got " << int(got);
          if (++failures > 20) FAIL() << "too many failures";
        }
      }
    }
  }
}

TEST(Spec1_Ue8m0, KnownAnswers) {
  using R = dsa::Ue8m0Rounding;
  EXPECT_EQ(dsa::f32_to_ue8m0(1.0f, R::up), 0x7F);
  EXPECT_EQ(dsa::f32_to_ue8m0(0.75f, R::up), 0x7F);
  EXPECT_EQ(dsa::f32_to_ue8m0(0.75f, R::down), 0x7E);
  EXPECT_EQ(dsa::f32_to_ue8m0(0.75f, R::nearest), 0x7E);  // tie 1.5·2^−1, code 126 even
  EXPECT_EQ(dsa::f32_to_ue8m0(1.5f, R::nearest), 0x80);   // tie 1.5·2^0: 127 odd → 128
  EXPECT_EQ(dsa::f32_to_ue8m0(1e-4f, R::up), 127 - 13);  // the all-zero-tile scale 2^−13
  EXPECT_EQ(dsa::f32_to_ue8m0(std::ldexp(1.0f, -127), R::up), 0x00);
  EXPECT_EQ(dsa::f32_to_ue8m0(std::ldexp(1.0f, -140), R::up), 0x00);  // 2^−127 ≥ x
  EXPECT_EQ(dsa::f32_to_ue8m0(std::ldexp(1.0f, -140), R::down), 0x00);  // nothing smaller exists
  EXPECT_EQ(dsa::f32_to_ue8m0(std::ldexp(1.0f, 127), R::up, Overflow::nonsat), 0xFE);
  EXPECT_EQ(dsa::f32_to_ue8m0(std::nextafter(std::ldexp(1.0f, 127), std::numeric_limits<float>::infinity()), R::up, Overflow::saturate), 0xFE);
  EXPECT_EQ(dsa::f32_to_ue8m0(std::nextafter(std::ldexp(1.0f, 127), std::numeric_limits<float>::infinity()), R::up, Overflow::nonsat), 0xFF);
  EXPECT_EQ(dsa::f32_to_ue8m0(std::numeric_limits<float>::max(), R::down, Overflow::nonsat), 0xFE);
  EXPECT_EQ(dsa::f32_to_ue8m0(std::numeric_limits<float>::infinity(), R::down, Overflow::saturate), 0xFE);
  EXPECT_EQ(dsa::f32_to_ue8m0(std::numeric_limits<float>::infinity(), R::down, Overflow::nonsat), 0xFF);
  EXPECT_EQ(dsa::f32_to_ue8m0(0.0f, R::up, Overflow::saturate), 0x00);
  EXPECT_EQ(dsa::f32_to_ue8m0(-0.0f, R::up, Overflow::saturate), 0x00);
  EXPECT_EQ(dsa::f32_to_ue8m0(0.0f, R::up, Overflow::nonsat), 0xFF);
  EXPECT_EQ(dsa::f32_to_ue8m0(-1.0f, R::up, Overflow::saturate), 0xFF);
  EXPECT_EQ(dsa::f32_to_ue8m0(float_of(0x7FC00000u), R::up, Overflow::saturate), 0xFF);
  // The default is rounding up with saturation (what pow2_ceil writers store).
  EXPECT_EQ(dsa::f32_to_ue8m0(3.0f), 0x81);
}

}  // namespace
