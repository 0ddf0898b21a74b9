// topk_indices kernel (gpu/topk.cu): one CTA per row, a radix select over order-preserving 32-bit
// keys, then a count pass and a write pass over warp-contiguous segments of the row (ballots keep
// position order, so the output is deterministic). The key function and the range of a row are
// host/device, so a test can check them on the CPU.
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <cstdint>

#include "dsa/formats.hpp"
#include "dsa/gpu/topk.hpp"
#include "dsa/visible_range.hpp"

namespace dsa::gpu::detail {

inline constexpr int kTopkThreads = 512;
inline constexpr int kTopkGroups = kTopkThreads / 32;  // 32-lane groups (a HIP wavefront holds two)
inline constexpr int kTopkDigitBits = 8;
inline constexpr int kTopkBins = 1 << kTopkDigitBits;

// A key whose unsigned order is the reference's value order (topk_compare_values): NaN (every
// payload, either sign) above +inf, −0 equal to +0, then IEEE order.
DSA_HD inline std::uint32_t topk_key(float x) {
  std::uint32_t b = f32_bits(x);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFFFFFu;
  if ((b & 0x7FFFFFFFu) == 0) b = 0;
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

DSA_HD inline VisibleRange topk_row_range(const TopkParams& a, std::int64_t row) {
  if (a.ranges == TopkRanges::paged)
    return paged_visible_range(a.context_lens_kind, a.context_lens, row / a.next_n, row % a.next_n, a.next_n, a.width);
  return ranged_visible_range(a.ks[row], a.ke[row], a.width);
}

}  // namespace dsa::gpu::detail
