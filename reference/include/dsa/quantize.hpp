// Cache writers and gathers (SPEC §2.4, §6.1): quantize rows into a paged cache through a slot
// mapping, and the inverse gathers.
#pragma once

#include <cstdint>
#include <span>

#include "dsa/caches.hpp"
#include "dsa/formats.hpp"
#include "dsa/hd.hpp"

namespace dsa {

enum class ScalePolicy : std::uint8_t {
  pow2_ceil,  // s = 2^ceil(log2(max(amax / fmax, 1e-4))) — FlashMLA HEAD, vLLM (default)
  fp32,       // s = amax / fmax (1e-4 where that is 0) — FlashMLA 2025, SGLang (V32 only)
};
const char* to_string(ScalePolicy);

// pow2_ceil floors amax / fmax at this value before rounding up (so an all-zero or tiny tile
// stores 2^−13); fp32 uses it only for an all-zero tile (amax / fmax = 0), because SPEC §2.4's
// fp32 scale is amax / fmax for every other tile.
inline constexpr float kMlaScaleFloor = 1e-4f;

struct MlaQuantParams {
  ScalePolicy policy = ScalePolicy::pow2_ceil;
  float fmax = 0.0f;  // 0 → the format's max (448 e4m3fn, 240 e4m3fnuz); vLLM ROCm uses 224
};

// The scale of one tile with absolute maximum `amax`, in fp32 (exact power of two under
// pow2_ceil: the exponent is computed exactly, not through a rounded log2).
float mla_tile_scale(float amax, float fmax, ScalePolicy policy);

// Writes rows [num_rows][row_stride ≥ dim_qk] (fp32 values; the RoPE part and the BF16 layout
// are stored RNE to bf16) into `cache` at slot_mapping[i] = block·P + t; −1 skips a row.
// Validates everything first; on error nothing is written.
void quantize_kv(std::span<const float> rows, std::int64_t num_rows, std::int64_t row_stride,
                 std::span<const std::int64_t> slot_mapping, MlaCacheSpan cache,
                 const MlaQuantParams& params = {});

// ----------------------------------------------------------------------------------------------
struct IndexKQuantParams {
  bool ue8m0_scale = false;  // round s up to a power of two
  float fmax = 0.0f;         // 0 → the format's max
};

// Per-token scale s = max(amax, 1e-4) / fmax (optionally 2^ceil(log2 s)). Host/device: the GPU
// writer computes the same fp32 bits.
DSA_HD inline float index_k_token_scale(float amax, float fmax, bool ue8m0_scale) {
  const float s = (amax < 1e-4f ? 1e-4f : amax) / fmax;  // std::max(amax, 1e-4f), NaN kept
  return ue8m0_scale ? ue8m0_to_f32(f32_to_ue8m0(s, Ue8m0Rounding::up)) : s;
}

// k [n][head_dim] fp32 → cache at slot_mapping[i] (−1 skips). Nothing written on error.
void quantize_index_k(std::span<const float> k, std::int64_t n, std::span<const std::int64_t> slot_mapping,
                      IndexKCacheSpan cache, const IndexKQuantParams& params = {});

// The inverse: for each sequence b, tokens [0, seq_lens[b]) through block_table[b][·] into
// contiguous out_codes [Σ seq_lens][head_dim] and out_scales [Σ seq_lens].
void gather_index_k(const IndexKCacheView& cache, std::span<const std::int32_t> block_table,
                    std::int64_t batch, std::int64_t max_blocks, std::span<const std::int32_t> seq_lens,
                    std::span<std::uint8_t> out_codes, std::span<float> out_scales);

// Lossless re-layout of every page (standard ↔ preshuffle, or same layout with another stride).
void transcode_index_k(const IndexKCacheView& src, IndexKCacheSpan dst);

}  // namespace dsa
