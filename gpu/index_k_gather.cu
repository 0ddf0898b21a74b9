// gather_index_k on the GPU: the device-side table checks that run before every gather.
#include "index_k_gather_kernel.cuh"

namespace dsa::gpu {
namespace detail {

__global__ void __launch_bounds__(kIndexKThreads) index_k_check_tables_kernel(const IndexKGatherParams a) {
  const std::int64_t n = a.batch * (a.max_blocks + 1);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int32_t bits = 0;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    bits |= index_k_check_item(a, i);
  if (bits != 0) atomicOr(a.status, bits);
}

__global__ void __launch_bounds__(kIndexKThreads) index_k_check_total_kernel(const IndexKGatherParams a) {
  const long long total = index_k_block_sum(a.seq_lens, a.batch, a.max_blocks * a.cache.page_tokens);
  if (threadIdx.x == 0 && total > a.out_tokens) atomicOr(a.status, static_cast<std::int32_t>(kIndexKOutputTooSmall));
}

void launch_index_k_checks(const IndexKGatherParams& a, Stream stream) {
  DSA_GPU_CHECK(cudaMemsetAsync(a.status, 0, sizeof(std::int32_t), stream));
  if (a.batch == 0) return;
  const std::int64_t n = a.batch * (a.max_blocks + 1);
  const std::int64_t blocks = std::min<std::int64_t>((n + kIndexKThreads - 1) / kIndexKThreads, 4096);
  index_k_check_tables_kernel<<<static_cast<unsigned>(blocks), kIndexKThreads, 0, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
  index_k_check_total_kernel<<<1, kIndexKThreads, 0, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
}

}  // namespace detail
}  // namespace dsa::gpu
