// Host/device annotation so that the bit-exact format and layout arithmetic is one source for
// the CPU reference and the CUDA/HIP kernels.
#pragma once

#if defined(__CUDACC__)
#define DSA_HD __host__ __device__
#elif defined(__HIP__) || defined(__HIPCC__)
// clang's HIP mode knows the attributes without any HIP header; __host__/__device__ are macros
// that only hip_runtime.h (or clang's wrapper) defines, and this header includes no GPU header.
#define DSA_HD __attribute__((host)) __attribute__((device))
#else
#define DSA_HD
#endif
