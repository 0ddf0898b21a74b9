// Host/device annotation so that the bit-exact format and layout arithmetic is one source for
// the CPU reference and the CUDA/HIP kernels.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DSA_HD __host__ __device__
#else
#define DSA_HD
#endif
