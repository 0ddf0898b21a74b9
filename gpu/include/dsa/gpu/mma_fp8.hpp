// Warp-level fp8 matrix product D = A·B + C of shape m16n8k32 (A row-major 16×32, B column-major
// 32×8, C/D 16×8 fp32) in the register fragments of PTX `mma.sync.m16n8k32.row.col.f32.e4m3.e4m3.f32`.
// Two implementations behind one call:
//   - hardware: the sm_89+ instruction itself (CUDA, both operands e4m3fn);
//   - emulated: the same fragments exchanged by shuffles inside each 32-lane group and multiplied
//     in fp32 from the exact decode of either fp8 format — e4m3fnuz (MI300), and the HIP build,
//     whose wavefront of 64 runs as two independent 32-lane groups.
// Fragment ownership, lane = 4·g + c (g = lane / 4, c = lane % 4), each register four fp8 codes,
// lowest byte first:
//   a[0]: A[g][4c .. 4c+3]    a[1]: A[g+8][4c .. 4c+3]    a[2]: A[g][16+4c ..]   a[3]: A[g+8][16+4c ..]
//   b[0]: B[4c .. 4c+3][g]    b[1]: B[16+4c .. 16+4c+3][g]
//   d[0]: D[g][2c]  d[1]: D[g][2c+1]  d[2]: D[g+8][2c]  d[3]: D[g+8][2c+1]
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <cstdint>

#include "dsa/formats.hpp"

namespace dsa::gpu {

// Lanes that one fragment spans, on every backend.
inline constexpr int kMmaLanes = 32;

#if defined(__CUDACC__) || defined(__HIPCC__) || defined(__HIP__)

// Shuffle inside the 32-lane group of the calling lane (src_lane in [0, 32)).
__device__ __forceinline__ std::uint32_t shfl_group32(std::uint32_t v, int src_lane) {
#if defined(DSA_GPU_BACKEND_HIP)
  return static_cast<std::uint32_t>(__shfl(static_cast<int>(v), src_lane, kMmaLanes));
#else
  return __shfl_sync(0xFFFFFFFFu, v, src_lane, kMmaLanes);
#endif
}
__device__ __forceinline__ float shfl_xor_group32(float v, int lane_mask) {
#if defined(DSA_GPU_BACKEND_HIP)
  return __shfl_xor(v, lane_mask, kMmaLanes);
#else
  return __shfl_xor_sync(0xFFFFFFFFu, v, lane_mask, kMmaLanes);
#endif
}

// Whether mma_fp8_m16n8k32<true> runs the hardware instruction (CUDA on sm_89+).
#if !defined(DSA_GPU_BACKEND_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
#define DSA_MMA_FP8_HARDWARE 1
#else
#define DSA_MMA_FP8_HARDWARE 0
#endif

// The emulation: every lane fetches row g and row g+8 of A from lanes 4g..4g+3 and columns 2c and
// 2c+1 of B from lanes 8c..8c+7, then sums the 32 products of each output in k order in fp32 and
// adds the sum to the accumulator. All 32 lanes of the group must call it together. Not inlined:
// it is the slow path, and one copy keeps the kernels that call it 64 times per tile small.
__device__ __noinline__ inline void mma_fp8_m16n8k32_emulated(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2],
                                                 Fp8Format a_fp8, Fp8Format b_fp8) {
  const int lane = static_cast<int>(threadIdx.x) % kMmaLanes;
  const int g = lane / 4, c = lane % 4;
  std::uint32_t arow[2][8];  // [row g, row g+8][k / 4]
  std::uint32_t bcol[2][8];  // [col 2c, col 2c+1][k / 4]
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int src = 4 * g + j;  // holds k in [4j, 4j+4) and [16+4j, 16+4j+4)
    arow[0][j] = shfl_group32(a[0], src);
    arow[1][j] = shfl_group32(a[1], src);
    arow[0][4 + j] = shfl_group32(a[2], src);
    arow[1][4 + j] = shfl_group32(a[3], src);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int bsrc = 4 * (2 * c + e) + j;
      bcol[e][j] = shfl_group32(b[0], bsrc);
      bcol[e][4 + j] = shfl_group32(b[1], bsrc);
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < 8; ++w) {
#pragma unroll
        for (int byte = 0; byte < 4; ++byte) {
          const auto ac = static_cast<std::uint8_t>(arow[r][w] >> (8 * byte));
          const auto bc = static_cast<std::uint8_t>(bcol[e][w] >> (8 * byte));
          sum = __fmaf_rn(fp8_to_f32(ac, a_fp8), fp8_to_f32(bc, b_fp8), sum);
        }
      }
      d[2 * r + e] += sum;
    }
  }
}

// kHardware: the caller promises both operands are e4m3fn; on a device without the instruction
// (HIP, or a CUDA arch below sm_89) the emulation runs with e4m3fn operands.
template <bool kHardware>
__device__ __forceinline__ void mma_fp8_m16n8k32(float (&d)[4], const std::uint32_t (&a)[4],
                                                 const std::uint32_t (&b)[2], Fp8Format a_fp8, Fp8Format b_fp8) {
#if DSA_MMA_FP8_HARDWARE
  if constexpr (kHardware) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    return;
  }
#endif
  if constexpr (kHardware) mma_fp8_m16n8k32_emulated(d, a, b, Fp8Format::e4m3fn, Fp8Format::e4m3fn);
  else mma_fp8_m16n8k32_emulated(d, a, b, a_fp8, b_fp8);
}

// ---------------------------------------------------------------------------------------------
// The fast path on Hopper. sm_90 has no fp8 mma.sync in hardware: ptxas lowers the instruction
// above to conversions of both fragments to f16 plus two f16 MMAs, every time it is issued. A
// kernel that reuses a fragment converts it once instead — every e4m3fn value (and NaN) is exact
// in f16, f16 products are exact in fp32 — and multiplies with mma.sync.m16n8k16.f32.f16.f16.f32.
// Fragments of m16n8k16 (two f16 per register, lower index in the low half):
//   a[0]: A[g][2c, 2c+1]   a[1]: A[g+8][2c, 2c+1]   a[2]: A[g][2c+8, 2c+9]   a[3]: A[g+8][2c+8, 2c+9]
//   b[0]: B[2c, 2c+1][g]   b[1]: B[2c+8, 2c+9][g];  d as above.
// CUDA only (kMmaF16Available); HIP kernels take the emulated fp8 path.
#if defined(DSA_GPU_BACKEND_HIP)
inline constexpr bool kMmaF16Available = false;
#else
inline constexpr bool kMmaF16Available = true;

// Two e4m3fn codes (low byte, high byte) → two f16 in one register, exactly (sm_89+).
__device__ __forceinline__ std::uint32_t e4m3x2_to_f16x2(std::uint32_t two_codes) {
  std::uint32_t r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  const auto x = static_cast<std::uint16_t>(two_codes);
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;\n" : "=r"(r) : "h"(x));
#endif
  return r;
}

__device__ __forceinline__ void mma_f16_m16n8k16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
#endif

#endif  // device compilers

}  // namespace dsa::gpu
