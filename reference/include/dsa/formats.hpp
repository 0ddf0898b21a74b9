// Bit-exact number formats of SPEC §1: bf16, fp8 e4m3fn, fp8 e4m3fnuz, ue8m0.
// Header-only and host/device, so the reference and the GPU kernels share one definition.
#pragma once

#include <cstdint>

#include "dsa/hd.hpp"

namespace dsa {

enum class Fp8Format : std::uint8_t { e4m3fn, e4m3fnuz };
enum class Overflow : std::uint8_t {
  saturate,  // out of range (and ±inf) clamps to ±max finite (NVIDIA satfinite)
  nonsat,    // out of range (and ±inf) becomes NaN for fp8, ±inf for bf16
};

inline const char* to_string(Fp8Format f) { return f == Fp8Format::e4m3fn ? "e4m3fn" : "e4m3fnuz"; }

DSA_HD inline std::uint32_t f32_bits(float x) { return __builtin_bit_cast(std::uint32_t, x); }
DSA_HD inline float f32_from_bits(std::uint32_t b) { return __builtin_bit_cast(float, b); }

// ---------------------------------------------------------------------------------------------
// bf16: the top 16 bits of an fp32.
DSA_HD inline float bf16_to_f32(std::uint16_t code) {
  return f32_from_bits(static_cast<std::uint32_t>(code) << 16);
}

// fp32 → bf16, RNE on the top 16 bits; NaN stays NaN (quietened, sign kept).
DSA_HD inline std::uint16_t f32_to_bf16(float x, Overflow policy = Overflow::nonsat) {
  const std::uint32_t b = f32_bits(x);
  const std::uint32_t sign = b & 0x80000000u;
  std::uint16_t out = static_cast<std::uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
  if (policy == Overflow::saturate && (out & 0x7FFFu) == 0x7F80u)
    out = static_cast<std::uint16_t>((sign >> 16) | 0x7F7Fu);
  const std::uint16_t quiet_nan = static_cast<std::uint16_t>((b >> 16) | 0x0040u);
  return (b & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : out;
}

// The value an fp32 takes after a round trip through bf16 (RNE, IEEE overflow to inf).
DSA_HD inline float round_to_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// ---------------------------------------------------------------------------------------------
// fp8 e4m3 family. Both formats share the bit layout 1-4-3; they differ in exponent bias, the
// largest finite magnitude code and the NaN encoding.
struct Fp8Traits {
  int bias;                  // 7 (fn) or 8 (fnuz)
  std::uint8_t max_code;     // magnitude code of the largest finite value: 0x7E / 0x7F
  std::uint8_t nan_code;     // canonical NaN produced by encoding: 0x7F / 0x80
  bool has_negative_zero;    // fn: 0x80 is −0; fnuz: 0x80 is NaN
};

DSA_HD inline Fp8Traits fp8_traits(Fp8Format f) {
  return f == Fp8Format::e4m3fn ? Fp8Traits{7, 0x7E, 0x7F, true} : Fp8Traits{8, 0x7F, 0x80, false};
}

DSA_HD inline float fp8_max(Fp8Format f) { return f == Fp8Format::e4m3fn ? 448.0f : 240.0f; }
DSA_HD inline std::uint8_t fp8_nan_code(Fp8Format f) { return fp8_traits(f).nan_code; }

DSA_HD inline bool fp8_is_nan(std::uint8_t code, Fp8Format f) {
  return f == Fp8Format::e4m3fn ? (code & 0x7Fu) == 0x7Fu : code == 0x80u;
}

// 2^e as an fp32, exact for e in [-149, 127].
DSA_HD inline float exp2i(int e) {
  if (e >= -126) return f32_from_bits(static_cast<std::uint32_t>(e + 127) << 23);
  return f32_from_bits(1u << (e + 149));  // subnormal
}

// Exact decode of an fp8 code into fp32, in integer operations and selects only (no branch, no
// floating-point operation), so that loops over codes vectorize. A normal code (e ≥ 1) is
// 2^(e−bias)·(1 + m/8); a subnormal one is m·2^(1−bias−3) = 2^(p−bias−2)·(m / 2^p) with p the
// position of m's leading bit.
DSA_HD inline float fp8_to_f32(std::uint8_t code, Fp8Format f) {
  const std::uint32_t bias = f == Fp8Format::e4m3fn ? 7u : 8u;
  const std::uint32_t c = code, e = (c >> 3) & 0xFu, m = c & 0x7u;
  const std::uint32_t normal = ((e + 127u - bias) << 23) | (m << 20);
  const std::uint32_t p = (m >= 4u ? 1u : 0u) + (m >= 2u ? 1u : 0u);
  const std::uint32_t subnormal = m == 0 ? 0u : ((p + 125u - bias) << 23) | ((m << (23u - p)) & 0x7FFFFFu);
  const std::uint32_t bits = ((c & 0x80u) << 24) | (e == 0 ? subnormal : normal);
  // NaN: 0x7F / 0xFF (e4m3fn), 0x80 (e4m3fnuz) — one compare, so that it vectorizes.
  const bool nan = (c & (f == Fp8Format::e4m3fn ? 0x7Fu : 0xFFu)) == (f == Fp8Format::e4m3fn ? 0x7Fu : 0x80u);
  return f32_from_bits(nan ? 0x7FC00000u : bits);
}

// fp32 → fp8 with round-to-nearest-even. Rounding happens as if the exponent were unbounded
// above; a result beyond the largest finite value is then an overflow (saturate: ±max,
// nonsat: NaN). ±inf follows the same policy; NaN gives the format's NaN code. In e4m3fnuz a
// result of −0 is encoded as 0x00 because 0x80 is NaN.
DSA_HD inline std::uint8_t f32_to_fp8(float x, Fp8Format f, Overflow policy = Overflow::saturate) {
  const Fp8Traits t = fp8_traits(f);
  const std::uint32_t b = f32_bits(x);
  const std::uint8_t sign = static_cast<std::uint8_t>((b >> 24) & 0x80u);
  const std::uint32_t abs_bits = b & 0x7FFFFFFFu;
  if (abs_bits > 0x7F800000u) return t.nan_code;
  const std::uint8_t overflow_code =
      policy == Overflow::saturate ? static_cast<std::uint8_t>(sign | t.max_code) : t.nan_code;
  if (abs_bits == 0x7F800000u) return overflow_code;

  // Work on the fp32 magnitude as an integer significand and a power-of-two exponent.
  const int exp_field32 = static_cast<int>(abs_bits >> 23);
  std::uint32_t sig = abs_bits & 0x7FFFFFu;
  int e;  // value = sig * 2^(e - 23), sig with its implicit bit
  if (exp_field32 == 0) {
    e = -126;
  } else {
    sig |= 0x800000u;
    e = exp_field32 - 127;
  }
  const int emin = 1 - t.bias;  // exponent of the smallest normal
  // The fp8 quantum at this magnitude: 2^(max(e_unbiased, emin) - 3).
  int e_val = e;
  if (sig != 0 && exp_field32 != 0) {
    // already normalised: top bit at position 23
  } else if (sig != 0) {
    // fp32 subnormal: far below any fp8 subnormal, treat as its true exponent
    int lead = 0;
    for (std::uint32_t s = sig; s >>= 1;) ++lead;
    e_val = -149 + lead;
  }
  const int q_exp = (e_val < emin ? emin : e_val) - 3;  // quantum = 2^q_exp
  // n = value / quantum, rounded to nearest even. value = sig * 2^(e - 23).
  const int shift = q_exp - (e - 23);  // value / quantum = sig / 2^shift
  std::uint32_t n;
  if (shift <= 0) {
    n = sig << (-shift);  // cannot happen for fp8 ranges but keep it exact
  } else if (shift >= 32) {
    n = 0;
  } else {
    const std::uint32_t whole = sig >> shift;
    const std::uint32_t rem = sig & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    n = whole + ((rem > half || (rem == half && (whole & 1u))) ? 1u : 0u);
  }
  // n in [0, 16]: n < 8 is subnormal (only when q_exp == emin - 3), n == 16 carries into the
  // next binade.
  int code_exp;
  std::uint32_t mant;
  int qe = q_exp;
  if (n >= 16) {
    n >>= 1;
    ++qe;
  }
  if (n < 8) {
    code_exp = 0;
    mant = n;
  } else {
    code_exp = qe + 3 + t.bias;
    mant = n - 8;
  }
  if (code_exp > 15 || ((code_exp << 3) | static_cast<int>(mant)) > t.max_code) return overflow_code;
  const std::uint8_t magnitude = static_cast<std::uint8_t>((code_exp << 3) | static_cast<int>(mant));
  if (magnitude == 0 && !t.has_negative_zero) return 0x00;
  return static_cast<std::uint8_t>(sign | magnitude);
}

// ---------------------------------------------------------------------------------------------
// ue8m0: an unsigned power of two, value = 2^(code − 127); 0xFF is NaN; 0x00 is 2^−127.
DSA_HD inline float ue8m0_to_f32(std::uint8_t code) {
  if (code == 0xFF) return f32_from_bits(0x7FC00000u);
  return exp2i(static_cast<int>(code) - 127);
}

enum class Ue8m0Rounding : std::uint8_t {
  up,       // smallest power of two ≥ x (what the pow2_ceil writers store)
  down,     // largest power of two ≤ x
  nearest,  // nearest power of two in value; a tie (x = 1.5·2^e) goes to the even code
};

// fp32 → ue8m0. NaN, negative values and −0/+0 have no ue8m0 value: saturate maps zero to the
// smallest code 0x00 and the rest to NaN; nonsat maps all of them to NaN. Beyond 2^127 (and
// +inf): saturate → 0xFE, nonsat → NaN. Below 2^−127 saturates to 0x00 under both policies
// when rounding gives a code below 0 (there is nothing smaller to underflow to).
DSA_HD inline std::uint8_t f32_to_ue8m0(float x, Ue8m0Rounding mode = Ue8m0Rounding::up,
                                         Overflow policy = Overflow::saturate) {
  const std::uint32_t b = f32_bits(x);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0xFF;
  if (b & 0x80000000u) {
    if ((b & 0x7FFFFFFFu) == 0 && policy == Overflow::saturate) return 0x00;
    return 0xFF;
  }
  if (b == 0) return policy == Overflow::saturate ? 0x00 : 0xFF;
  if (b == 0x7F800000u) return policy == Overflow::saturate ? 0xFE : 0xFF;
  int e;
  std::uint32_t frac;  // bits below the leading one, left-aligned to 23 bits
  const int exp_field32 = static_cast<int>(b >> 23);
  if (exp_field32 != 0) {
    e = exp_field32 - 127;
    frac = b & 0x7FFFFFu;
  } else {
    std::uint32_t sig = b & 0x7FFFFFu;
    int lead = 0;
    for (std::uint32_t s = sig; s >>= 1;) ++lead;
    e = -149 + lead;
    frac = (sig << (23 - lead)) & 0x7FFFFFu;
  }
  int out = e;
  switch (mode) {
    case Ue8m0Rounding::up: out = e + (frac != 0 ? 1 : 0); break;
    case Ue8m0Rounding::down: out = e; break;
    case Ue8m0Rounding::nearest: {
      const std::uint32_t half = 0x400000u;  // mantissa 1.5
      if (frac > half) out = e + 1;
      else if (frac == half) out = ((e + 127) & 1) ? e + 1 : e;  // to the even code
      break;
    }
  }
  if (out > 127) return policy == Overflow::saturate ? 0xFE : 0xFF;
  if (out < -127) return 0x00;
  return static_cast<std::uint8_t>(out + 127);
}

}  // namespace dsa
