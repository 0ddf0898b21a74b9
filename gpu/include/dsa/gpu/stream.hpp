// The stream type of the public launch API, declared without any vendor header so that plain C++
// can include the launch headers. It is the runtime's own handle type: cudaStream_t
// (CUstream_st*) or hipStream_t (ihipStream_t*). nullptr is the legacy default stream.
#pragma once

#if defined(DSA_GPU_BACKEND_HIP)
struct ihipStream_t;
namespace dsa::gpu {
using Stream = ihipStream_t*;
inline constexpr const char* kBackendName = "HIP";
}  // namespace dsa::gpu
#else
struct CUstream_st;
namespace dsa::gpu {
using Stream = CUstream_st*;
inline constexpr const char* kBackendName = "CUDA";
}  // namespace dsa::gpu
#endif
