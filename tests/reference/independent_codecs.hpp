// Number-format codecs written independently of reference/include/dsa/formats.hpp, for tests only.
// They work on values (doubles, tables of decoded values, frexp/ldexp), never on the bit tricks
// the code under test uses, so an error in one is not repeated in the other.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace indep {

inline std::uint32_t bits_of(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}
inline float float_of(std::uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

// ---------------------------------------------------------------------------------------------
// fp8 e4m3: sign · 2^(E − bias) · (1 + M/8) for E > 0, sign · 2^(1 − bias) · M/8 for E = 0.
// e4m3fn: bias 7, NaN = S.1111.111; e4m3fnuz: bias 8, NaN = 1.0000.000 (the "negative zero").
inline constexpr int kFnBias = 7;
inline constexpr int kFnuzBias = 8;

inline bool fp8_code_is_nan(std::uint8_t c, bool fnuz) {
  return fnuz ? c == 0x80 : (c == 0x7F || c == 0xFF);
}

inline double fp8_value(std::uint8_t c, bool fnuz) {
  if (fp8_code_is_nan(c, fnuz)) return std::numeric_limits<double>::quiet_NaN();
  const int bias = fnuz ? kFnuzBias : kFnBias;
  const int sign = c >> 7, e = (c >> 3) & 0xF, m = c & 0x7;
  const double magnitude = e == 0 ? std::ldexp(m / 8.0, 1 - bias) : std::ldexp(1.0 + m / 8.0, e - bias);
  return sign ? -magnitude : magnitude;
}

// The ordered table of non-negative finite magnitudes: magnitude code k (0 ≤ k ≤ max) decodes to
// table[k]; magnitudes increase with the code. `beyond` is the value one code past the maximum if
// the exponent were unbounded (max + the top binade's step) — the other end of the last interval.
struct Fp8Table {
  std::array<double, 128> value{};
  int max_code = 0;  // 0x7E (fn) / 0x7F (fnuz)
  double beyond = 0;
  bool fnuz = false;
};

inline Fp8Table make_fp8_table(bool fnuz) {
  Fp8Table t;
  t.fnuz = fnuz;
  t.max_code = fnuz ? 0x7F : 0x7E;
  for (int k = 0; k <= t.max_code; ++k) t.value[k] = fp8_value(static_cast<std::uint8_t>(k), fnuz);
  // The top binade [2^(15−bias), 2^(16−bias)) has step 2^(15−bias−3).
  const int bias = fnuz ? kFnuzBias : kFnBias;
  t.beyond = t.value[t.max_code] + std::ldexp(1.0, 15 - bias - 3);
  return t;
}

// Round-to-nearest by searching the table: the largest entry ≤ |x| and the next one up, compared
// with their midpoint (exact in double); a tie goes to the even code, i.e. even mantissa.
// Overflow (a result past max_code, or ±inf): saturate → ±max, nonsat → the canonical NaN.
inline std::uint8_t fp8_encode(float x, const Fp8Table& t, bool saturate) {
  const std::uint8_t nan_code = t.fnuz ? 0x80 : 0x7F;
  if (std::isnan(x)) return nan_code;
  const bool negative = std::signbit(x);
  const double a = std::fabs(static_cast<double>(x));
  int code = -1;  // -1: overflow
  if (!std::isinf(a) && a < t.beyond) {
    const double* begin = t.value.data();
    const double* end = begin + t.max_code + 1;
    const int k = static_cast<int>(std::upper_bound(begin, end, a) - begin) - 1;  // table[k] ≤ a
    const double lo = t.value[k];
    const double hi = k < t.max_code ? t.value[k + 1] : t.beyond;
    const double mid = (lo + hi) / 2;
    int pick;
    if (a < mid) pick = k;
    else if (a > mid) pick = k + 1;
    else pick = (k % 2 == 0) ? k : k + 1;
    code = pick <= t.max_code ? pick : -1;
  }
  if (code < 0) {
    if (!saturate) return nan_code;
    code = t.max_code;
  }
  if (!negative) return static_cast<std::uint8_t>(code);
  if (t.fnuz && code == 0) return 0x00;  // no −0 in fnuz
  return static_cast<std::uint8_t>(0x80 | code);
}

// ---------------------------------------------------------------------------------------------
// bf16: 1-8-7, bias 127. Value of a code computed from its fields.
inline double bf16_value(std::uint16_t c) {
  const int sign = c >> 15, e = (c >> 7) & 0xFF, m = c & 0x7F;
  double magnitude;
  if (e == 0xFF) magnitude = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  else if (e == 0) magnitude = std::ldexp(m / 128.0, -126);
  else magnitude = std::ldexp(1.0 + m / 128.0, e - 127);
  return sign ? -magnitude : magnitude;
}

// RNE of a finite fp32 to bf16 precision, as a value: the bf16 grid step at |x| is 2^(e−7)
// (e = floor(log2|x|), at least −126), lo = |x| rounded down to the grid, hi = lo + step.
// Returns the rounded magnitude (2^128 means "rounds past the largest finite").
inline double bf16_round_magnitude(float x) {
  const double a = std::fabs(static_cast<double>(x));
  if (a == 0) return 0;
  int e2;
  std::frexp(a, &e2);  // a = f · 2^e2, f ∈ [0.5, 1) → floor(log2 a) = e2 − 1
  const int e = std::max(e2 - 1, -126);
  const double step = std::ldexp(1.0, e - 7);
  const double n = std::floor(a / step);  // exact: a / step is a scaling by a power of two
  const double lo = n * step, hi = lo + step, mid = (lo + hi) / 2;
  if (a < mid) return lo;
  if (a > mid) return hi;
  return std::fmod(n, 2.0) == 0 ? lo : hi;
}

inline std::uint16_t bf16_encode(float x, bool saturate) {
  const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  if (std::isnan(x)) return 0x7FC0;  // callers only check NaN-ness and the sign
  if (std::isinf(x)) return saturate ? (sign | 0x7F7F) : (sign | 0x7F80);
  const double r = bf16_round_magnitude(x);
  if (r >= std::ldexp(1.0, 128)) return saturate ? (sign | 0x7F7F) : (sign | 0x7F80);
  const std::uint32_t b = bits_of(static_cast<float>(r));  // r is a bf16 value, exact in fp32
  return static_cast<std::uint16_t>(sign | (b >> 16));
}

// ---------------------------------------------------------------------------------------------
// ue8m0: value 2^(c − 127), 0xFF NaN.
inline double ue8m0_value(std::uint8_t c) {
  return c == 0xFF ? std::numeric_limits<double>::quiet_NaN() : std::ldexp(1.0, c - 127);
}

enum class Pow2Round { up, down, nearest };

// Policy of formats.hpp: NaN, negatives → 0xFF; ±0 → 0x00 (saturate) / 0xFF (nonsat); +inf and
// results above 2^127 → 0xFE (saturate) / 0xFF (nonsat); results below 2^−127 → 0x00.
inline std::uint8_t ue8m0_encode(float x, Pow2Round mode, bool saturate) {
  if (std::isnan(x)) return 0xFF;
  if (x == 0) return saturate ? 0x00 : 0xFF;
  if (x < 0) return 0xFF;
  if (std::isinf(x)) return saturate ? 0xFE : 0xFF;
  int e2;
  const double f = std::frexp(static_cast<double>(x), &e2);  // x = f·2^e2, f ∈ [0.5, 1)
  const int lo = e2 - 1;                                       // 2^lo ≤ x < 2^(lo+1)
  const bool exact = f == 0.5;
  int p = lo;
  switch (mode) {
    case Pow2Round::up: p = exact ? lo : lo + 1; break;
    case Pow2Round::down: p = lo; break;
    case Pow2Round::nearest: {
      const double mid = 1.5 * std::ldexp(1.0, lo);
      if (x > mid) p = lo + 1;
      else if (x == mid) p = ((lo + 127) % 2 == 0) ? lo : lo + 1;  // even code
      break;
    }
  }
  if (p > 127) return saturate ? 0xFE : 0xFF;
  if (p < -127) return 0x00;
  return static_cast<std::uint8_t>(p + 127);
}

}  // namespace indep
