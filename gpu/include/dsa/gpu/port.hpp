// The one portability header (in the manner of ggml's vendors/hip.h): kernels and launchers are
// written once in CUDA C++ and this header maps what differs to HIP — runtime calls, warp size
// and shuffles, number-format conversions — plus the checked-call macro. Include it first in every
// .cu file. No kernel body exists twice.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

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
#else
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

#if defined(__CUDACC__) || defined(__HIPCC__) || defined(__HIP__)
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

}  // namespace dsa::gpu
