// Reader models (SPEC §2.5): how a kernel turns cache bytes back into the operands of its dot
// products. A kernel is judged against the values *it* sees, so quantization error cancels.
#pragma once

#include <cstdint>

#include "dsa/formats.hpp"
#include "dsa/hd.hpp"

namespace dsa {

enum class ScaleAs : std::uint8_t {
  fp32,        // the stored scale, exact
  bf16,        // rounded to bf16 (RNE) before use — FlashMLA SM90
  e8m0_floor,  // 2^floor(log2 s) — FlashMLA SM100
};
enum class ProductAs : std::uint8_t { fp32, bf16 };  // precision of code × scale
enum class OperandAs : std::uint8_t { bf16, fp32 };  // precision of the dot-product operands

struct ReaderModel {
  ScaleAs scale = ScaleAs::fp32;
  ProductAs product = ProductAs::fp32;
  OperandAs operand = OperandAs::bf16;

  // The project default and the staged path: dequantize in fp32, stage as bf16.
  static constexpr ReaderModel staged_bf16() { return {ScaleAs::fp32, ProductAs::fp32, OperandAs::bf16}; }
  static constexpr ReaderModel flashmla_sm90() { return {ScaleAs::bf16, ProductAs::bf16, OperandAs::bf16}; }
  static constexpr ReaderModel flashmla_sm100() { return {ScaleAs::e8m0_floor, ProductAs::fp32, OperandAs::bf16}; }
  static constexpr ReaderModel exact_fp32() { return {ScaleAs::fp32, ProductAs::fp32, OperandAs::fp32}; }

  friend constexpr bool operator==(const ReaderModel&, const ReaderModel&) = default;
};

const char* to_string(ScaleAs);
const char* to_string(ProductAs);
const char* to_string(OperandAs);

// The scale as the reader uses it.
DSA_HD inline float effective_scale(float s, ScaleAs how) {
  switch (how) {
    case ScaleAs::fp32: return s;
    case ScaleAs::bf16: return round_to_bf16(s);
    case ScaleAs::e8m0_floor: {
      const std::uint8_t c = f32_to_ue8m0(s, Ue8m0Rounding::down, Overflow::saturate);
      return ue8m0_to_f32(c);
    }
  }
  return s;
}

// One dequantized operand: code × scale at the product precision, then at operand precision.
// `scale_eff` is effective_scale(stored scale, model.scale), computed once per tile.
DSA_HD inline float dequant_operand(std::uint8_t code, Fp8Format fmt, float scale_eff, const ReaderModel& m) {
  // The two optional bf16 roundings as bit blends with loop-invariant masks (no branch), so that a
  // loop over codes vectorizes.
  const std::uint32_t product_mask = m.product == ProductAs::bf16 ? ~0u : 0u;
  const std::uint32_t operand_mask = m.operand == OperandAs::bf16 ? ~0u : 0u;
  std::uint32_t v = f32_bits(fp8_to_f32(code, fmt) * scale_eff);
  // A NaN product carries whatever payload the hardware makes (x86 propagates the operand's,
  // NVIDIA GPUs return 0x7FFFFFFF): canonicalise it so that host and device agree bit for bit.
  v = (v & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : v;
  v = (f32_bits(round_to_bf16(f32_from_bits(v))) & product_mask) | (v & ~product_mask);
  v = (f32_bits(round_to_bf16(f32_from_bits(v))) & operand_mask) | (v & ~operand_mask);
  return f32_from_bits(v);
}

// A value stored as bf16 in the cache (RoPE dims, BF16 layout) is already at operand precision.
DSA_HD inline float bf16_operand(std::uint16_t code) { return bf16_to_f32(code); }

}  // namespace dsa
