// quantize_index_k on the GPU: the device-side slot checks that run before every store, and the
// warm-up of the store kernels.
#include "index_k_store_kernel.cuh"

#include <algorithm>

namespace dsa::gpu {
namespace detail {

__global__ void __launch_bounds__(kIndexKStoreThreads) index_k_store_check_kernel(const IndexKStoreParams a) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int32_t bits = 0;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n; i += stride)
    bits |= index_k_store_check_item(a, i);
  if (bits != 0) atomicOr(a.status, bits);
}

void launch_index_k_store_checks(const IndexKStoreParams& a, Stream stream) {
  DSA_GPU_CHECK(cudaMemsetAsync(a.status, 0, sizeof(std::int32_t), stream));
  if (a.n == 0) return;
  const std::int64_t blocks = std::min<std::int64_t>((a.n + kIndexKStoreThreads - 1) / kIndexKStoreThreads, 1024);
  index_k_store_check_kernel<<<static_cast<unsigned>(blocks), kIndexKStoreThreads, 0, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
}

}  // namespace detail

void index_k_store_warmup() {
  cudaFuncAttributes attributes;
  DSA_GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(detail::index_k_store_check_kernel)));
  detail::warm_index_k_store_kernel<IndexKLayout::standard>();
  detail::warm_index_k_store_kernel<IndexKLayout::preshuffle>();
}

}  // namespace dsa::gpu
