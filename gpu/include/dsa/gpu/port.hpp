// The one portability header (in the manner of ggml's vendors/hip.h): kernels and launchers are
// written once in CUDA C++ and this header maps what differs to HIP — runtime calls, warp size
// and shuffles, number-format conversions — plus the checked-call macro. Include it first in every
// .cu file. No kernel body exists twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "dsa/formats.hpp"
#include "dsa/gpu/stream.hpp"
#include "dsa/hd.hpp"

#if defined(DSA_GPU_BACKEND_HIP)
#include <hip/hip_runtime.h>

// Runtime API: CUDA names → HIP names (only what the project uses; add as needed).
#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaGetErrorName hipGetErrorName
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaPeekAtLastError hipPeekAtLastError
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDevice hipGetDevice
#define cudaSetDevice hipSetDevice
#define cudaDeviceSynchronize hipDeviceSynchronize
#define cudaDeviceProp hipDeviceProp_t
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define cudaDevAttrL2CacheSize hipDeviceAttributeL2CacheSize
#define cudaFuncSetAttribute hipFuncSetAttribute
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMallocHost hipHostMalloc
#define cudaFreeHost hipHostFree
#define cudaMemcpy hipMemcpy
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemset hipMemset
#define cudaMemsetAsync hipMemsetAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaStream_t hipStream_t
#define cudaStreamCreate hipStreamCreate
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaEvent_t hipEvent_t
#define cudaEventCreate hipEventCreate
#define cudaEventDestroy hipEventDestroy
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventElapsedTime hipEventElapsedTime
#define cudaGraph_t hipGraph_t
#define cudaGraphExec_t hipGraphExec_t
#define cudaStreamBeginCapture hipStreamBeginCapture
#define cudaStreamEndCapture hipStreamEndCapture
#define cudaStreamCaptureModeGlobal hipStreamCaptureModeGlobal
#define cudaStreamCaptureModeThreadLocal hipStreamCaptureModeThreadLocal
// cudaGraphInstantiate's signature differs between the runtimes; the WithFlags form does not.
#define cudaGraphInstantiateWithFlags hipGraphInstantiateWithFlags
#define cudaGraphLaunch hipGraphLaunch
#define cudaGraphExecDestroy hipGraphExecDestroy
#define cudaGraphDestroy hipGraphDestroy
#define cudaFuncGetAttributes hipFuncGetAttributes
#define cudaFuncAttributes hipFuncAttributes
#define cudaStreamCaptureStatus hipStreamCaptureStatus
#define cudaStreamIsCapturing hipStreamIsCapturing
#define cudaStreamCaptureStatusNone hipStreamCaptureStatusNone
#else
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#endif

namespace dsa::gpu {

static_assert(std::is_same_v<Stream, cudaStream_t>, "dsa::gpu::Stream must be the runtime's stream handle");

// ---------------------------------------------------------------------------------------------
// Errors: every runtime call goes through DSA_GPU_CHECK, which throws with file:line, the call,
// the error's name and its description.
class Error : public std::runtime_error {
 public:
  Error(cudaError_t code, const std::string& what) : std::runtime_error(what), code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return;
  throw Error(e, std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                     cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

#define DSA_GPU_CHECK(call) ::dsa::gpu::check((call), #call, __FILE__, __LINE__)
// After a kernel launch: a bad configuration is reported by the launch, not by the kernel.
#define DSA_GPU_CHECK_LAUNCH() ::dsa::gpu::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

// ---------------------------------------------------------------------------------------------
// Warp (CUDA) / wavefront (HIP): 32 lanes on NVIDIA, 64 on the CDNA targets this project builds
// for (gfx90a, gfx94x). Host code that sizes launches by warps uses the same constant.
#if defined(DSA_GPU_BACKEND_HIP)
#if defined(__AMDGCN_WAVEFRONT_SIZE)
inline constexpr int kWarpSize = __AMDGCN_WAVEFRONT_SIZE;
#else
inline constexpr int kWarpSize = 64;
#endif
#else
inline constexpr int kWarpSize = 32;
#endif

#if defined(__CUDACC__) && !defined(DSA_GPU_BACKEND_HIP)
// A programmatic dependent launch (CUDA, sm_90): `kernel` may be scheduled before the kernel ahead
// of it in the stream has finished, as soon as that one's CTAs have all executed
// release_dependents or exited. The kernel must call wait_for_kernel_ahead (below) before it
// touches anything the kernel ahead may still write.
template <class... Params, class... Args>
void launch_programmatic(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem_bytes, Stream stream,
                         Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  DSA_GPU_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}
#endif

#if defined(__CUDACC__) || defined(__HIPCC__) || defined(__HIP__)
// Programmatic dependent launch, the device side (CUDA sm_90; HIP launches in stream order, so both
// are no-ops there). wait_for_kernel_ahead returns once the kernel ahead in the stream has finished
// and its writes are visible (at once without a programmatic launch); release_dependents lets the
// kernel after this one be scheduled now (it must still wait before it reads what this one writes).
__device__ __forceinline__ void wait_for_kernel_ahead() {
#if !defined(DSA_GPU_BACKEND_HIP)
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void release_dependents() {
#if !defined(DSA_GPU_BACKEND_HIP)
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Butterfly shuffle over all lanes of the warp (`width` a power of two ≤ kWarpSize).
template <class T>
__device__ __forceinline__ T shfl_xor(T v, int lane_mask, int width = kWarpSize) {
#if defined(DSA_GPU_BACKEND_HIP)
  return __shfl_xor(v, lane_mask, width);
#else
  return __shfl_xor_sync(0xFFFFFFFFu, v, lane_mask, width);
#endif
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int m = kWarpSize / 2; m > 0; m >>= 1) v += shfl_xor(v, m);
  return v;
}
#endif

// ---------------------------------------------------------------------------------------------
// Number formats. bf16 travels as its 16-bit code on both backends (bit-identical to
// __nv_bfloat16 / hip_bfloat16 storage). Conversions are the reference's own (formats.hpp) on
// both backends: ROCm 5.2 has no bf16/fp8 conversion header, CUDA's __float2bfloat16_rn
// canonicalises NaN payloads (the reference keeps them, quietened), and CUDA's fp8 intrinsics
// know no e4m3fnuz. A native intrinsic replaces these only once a test shows it bit-identical
// over every input code.
using bf16_bits = std::uint16_t;

DSA_HD inline float bf16_to_float(bf16_bits code) { return dsa::bf16_to_f32(code); }
DSA_HD inline bf16_bits float_to_bf16(float x) { return dsa::f32_to_bf16(x); }
DSA_HD inline float fp8_to_float(std::uint8_t code, Fp8Format f) { return dsa::fp8_to_f32(code, f); }
DSA_HD inline std::uint8_t float_to_fp8(float x, Fp8Format f, Overflow policy = Overflow::saturate) {
  return dsa::f32_to_fp8(x, f, policy);
}

// ---------------------------------------------------------------------------------------------
// Warp-level matrix primitives of the attention kernels, in the register layouts of PTX's
// mma.sync.m16n8k16 (bf16 operands, fp32 accumulators) and ldmatrix, over groups of 32 lanes
// ("mma warps": threadIdx.x / 32). On CUDA these are the instructions themselves; on HIP they are
// emulated with width-32 shuffles and plain shared-memory loads (a 64-lane wavefront holds two
// independent mma warps), so the kernel body is one source. The HIP versions exist to compile
// the same kernels for gfx90a; nothing in this project runs them.
#if defined(__CUDACC__) || defined(__HIPCC__) || defined(__HIP__)
inline constexpr int kMmaWarp = 32;

#if defined(DSA_GPU_BACKEND_HIP)
template <class T>
__device__ __forceinline__ T shfl32(T v, int src_lane) {
  return __shfl(v, src_lane, kMmaWarp);
}
#endif

// Butterfly shuffle inside groups of `width` lanes (width a power of two ≤ 32).
template <class T>
__device__ __forceinline__ T shfl_xor_group(T v, int lane_mask, int width) {
#if defined(DSA_GPU_BACKEND_HIP)
  return __shfl_xor(v, lane_mask, width);
#else
  return __shfl_xor_sync(0xFFFFFFFFu, v, lane_mask, width);
#endif
}

// ldmatrix.x4: lane l passes the address of row l % 8 of 8×8 bf16 matrix l / 8 (16 contiguous
// bytes, 16-byte aligned, in shared memory); lane t receives in r[i] the two elements
// (row t / 4, columns 2·(t % 4), +1) of matrix i.
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* row_addr) {
#if defined(DSA_GPU_BACKEND_HIP)
  const int t = static_cast<int>(threadIdx.x) % kMmaWarp;
  const auto a = reinterpret_cast<std::uintptr_t>(row_addr);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const auto src = shfl32(a, 8 * i + t / 4);
    r[i] = *reinterpret_cast<const std::uint32_t*>(src + 4 * (t % 4));
  }
#else
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(row_addr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#endif
}

// ldmatrix.x4.trans: the same addressing; lane t receives the elements (rows 2·(t % 4), +1;
// column t / 4) of matrix i, i.e. the fragment of the transposed matrix.
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* row_addr) {
#if defined(DSA_GPU_BACKEND_HIP)
  const int t = static_cast<int>(threadIdx.x) % kMmaWarp;
  const auto a = reinterpret_cast<std::uintptr_t>(row_addr);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const auto lo = shfl32(a, 8 * i + 2 * (t % 4));
    const auto hi = shfl32(a, 8 * i + 2 * (t % 4) + 1);
    r[i] = *reinterpret_cast<const std::uint16_t*>(lo + 2 * (t / 4)) |
           (static_cast<std::uint32_t>(*reinterpret_cast<const std::uint16_t*>(hi + 2 * (t / 4))) << 16);
  }
#else
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(row_addr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#endif
}

// d += A·B for A 16×16 (row-major fragment a[4]), B 16×8 (column fragment b0, b1), fp32 d[4]:
// lane t holds d (row t/4, cols 2(t%4), +1) and (row t/4 + 8, same cols).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                               std::uint32_t b1) {
#if defined(DSA_GPU_BACKEND_HIP)
  const int t = static_cast<int>(threadIdx.x) % kMmaWarp;
  const int g = t / 4, c = t % 4;
  auto lo = [](std::uint32_t w) { return dsa::bf16_to_f32(static_cast<std::uint16_t>(w & 0xFFFFu)); };
  auto hi = [](std::uint32_t w) { return dsa::bf16_to_f32(static_cast<std::uint16_t>(w >> 16)); };
  float acc[4] = {d[0], d[1], d[2], d[3]};
  for (int kc = 0; kc < 4; ++kc) {
    const std::uint32_t a_r0k0 = shfl32(a[0], 4 * g + kc), a_r1k0 = shfl32(a[1], 4 * g + kc);
    const std::uint32_t a_r0k1 = shfl32(a[2], 4 * g + kc), a_r1k1 = shfl32(a[3], 4 * g + kc);
    const std::uint32_t b_c0k0 = shfl32(b0, 8 * c + kc), b_c0k1 = shfl32(b1, 8 * c + kc);
    const std::uint32_t b_c1k0 = shfl32(b0, 8 * c + 4 + kc), b_c1k1 = shfl32(b1, 8 * c + 4 + kc);
    const std::uint32_t ar[2][2] = {{a_r0k0, a_r0k1}, {a_r1k0, a_r1k1}};
    const std::uint32_t bc[2][2] = {{b_c0k0, b_c0k1}, {b_c1k0, b_c1k1}};
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        for (int h = 0; h < 2; ++h)
          acc[2 * i + j] += lo(ar[i][h]) * lo(bc[j][h]) + hi(ar[i][h]) * hi(bc[j][h]);
  }
  for (int i = 0; i < 4; ++i) d[i] = acc[i];
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// Asynchronous global → shared copies (cp.async; HIP: synchronous copies). Both addresses
// aligned to the copy size. Visible to the block after cp_async_wait_all() and a barrier.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
#if defined(DSA_GPU_BACKEND_HIP)
  *reinterpret_cast<uint4*>(smem) = *reinterpret_cast<const uint4*>(gmem);
#else
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(a), "l"(gmem));
#endif
}
__device__ __forceinline__ void cp_async_8(void* smem, const void* gmem) {
#if defined(DSA_GPU_BACKEND_HIP)
  *reinterpret_cast<uint2*>(smem) = *reinterpret_cast<const uint2*>(gmem);
#else
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(a), "l"(gmem));
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if !defined(DSA_GPU_BACKEND_HIP)
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
__device__ __forceinline__ void cp_async_wait_all() {
#if !defined(DSA_GPU_BACKEND_HIP)
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

// 2^x with the hardware approximation (ex2.approx.f32: relative error ≤ 2^−22, subnormal
// results kept; exp2(−inf) = 0). HIP: exp2f.
__device__ __forceinline__ float fast_exp2(float x) {
#if defined(DSA_GPU_BACKEND_HIP)
  return exp2f(x);
#else
  float y;
  asm("ex2.approx.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
#endif
}

// Two e4m3fn codes (low byte first) → two fp32, exactly (every e4m3fn value is an f16; NaN stays
// NaN). CUDA: the sm_89+ converter cvt.rn.f16x2.e4m3x2, then f16 → f32; HIP: the reference
// decoder. tests/gpu/sparse_mla_decode_test.cu checks it against dsa::fp8_to_f32 on every code.
__device__ __forceinline__ void e4m3fn_x2_to_float2(std::uint16_t codes, float& lo, float& hi) {
#if defined(DSA_GPU_BACKEND_HIP)
  lo = dsa::fp8_to_f32(static_cast<std::uint8_t>(codes & 0xFF), dsa::Fp8Format::e4m3fn);
  hi = dsa::fp8_to_f32(static_cast<std::uint8_t>(codes >> 8), dsa::Fp8Format::e4m3fn);
#else
  std::uint32_t h2;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;\n" : "=r"(h2) : "h"(codes));
  asm("{\n .reg .b16 l, h;\n mov.b32 {l, h}, %2;\n cvt.f32.f16 %0, l;\n cvt.f32.f16 %1, h;\n}\n"
      : "=f"(lo), "=f"(hi)
      : "r"(h2));
#endif
}

// Two fp32 → two bf16 (RNE), `lo` in the low half. For every non-NaN input this is
// dsa::f32_to_bf16; a NaN may come out with another payload (CUDA's converter canonicalises it),
// which only matters where bf16 bits are compared, not where they are multiplied.
__device__ __forceinline__ std::uint32_t pack_bf16x2_rn(float lo, float hi) {
#if defined(DSA_GPU_BACKEND_HIP)
  return dsa::f32_to_bf16(lo) | (static_cast<std::uint32_t>(dsa::f32_to_bf16(hi)) << 16);
#else
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
#endif
}
#endif  // device compilers

}  // namespace dsa::gpu
