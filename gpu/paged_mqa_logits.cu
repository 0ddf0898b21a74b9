// paged_mqa_logits on the GPU: the device-side checks that run before every logits launch, and
// the warm-up of every instance.
#include "paged_mqa_logits_kernel.cuh"

#include <algorithm>

namespace dsa::gpu {
namespace detail {

__global__ void __launch_bounds__(kPagedCheckThreads) paged_logits_check_kernel(const PagedMqaLogitsParams a) {
  const std::int64_t n = a.batch * (a.max_blocks + 1);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int32_t bits = 0;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    bits |= paged_logits_check_item(a, i);
  if (bits != 0) atomicOr(a.status, bits);
}

void launch_paged_logits_checks(const PagedMqaLogitsParams& a, Stream stream) {
  DSA_GPU_CHECK(cudaMemsetAsync(a.status, 0, sizeof(std::int32_t), stream));
  if (a.batch == 0) return;
  const std::int64_t n = a.batch * (a.max_blocks + 1);
  const std::int64_t blocks = std::min<std::int64_t>((n + kPagedCheckThreads - 1) / kPagedCheckThreads, 1024);
  paged_logits_check_kernel<<<static_cast<unsigned>(blocks), kPagedCheckThreads, 0, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
}

}  // namespace detail

double logits_accumulator_unit(Fp8Format q_fp8, Fp8Format k_fp8) {
  return detail::logits_accumulator_unit_for(detail::choose_logits_path(q_fp8, k_fp8));
}

void paged_mqa_logits_warmup() {
  cudaFuncAttributes attributes;
  DSA_GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(detail::paged_logits_check_kernel)));
  detail::warm_logits_kernels<detail::PagedKSource<IndexKLayout::standard>>();
  detail::warm_logits_kernels<detail::PagedKSource<IndexKLayout::preshuffle>>();
}

}  // namespace dsa::gpu
