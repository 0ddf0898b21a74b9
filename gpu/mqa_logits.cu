// mqa_logits on the GPU: the device-side checks of ks/ke, the launch of the shared logits kernel
// over a contiguous K (this file holds its instances), and their warm-up.
#include "mqa_logits_kernel.cuh"

#include <algorithm>

#include "dsa/gpu/mqa_logits.hpp"

namespace dsa::gpu {
namespace detail {

inline constexpr int kMqaCheckThreads = 256;

// The status bits of row i (the rule of dsa::validate: 0 ≤ ks ≤ ke ≤ S_kv).
DSA_HD inline std::int32_t mqa_logits_check_row(const MqaLogitsParams& a, std::int64_t i) {
  const std::int32_t ks = a.ks[i], ke = a.ke[i];
  if (ks < 0 || ks > ke) return kMqaLogitsBadKs;
  return ke > a.seq_len_kv ? kMqaLogitsBadKe : 0;
}

__global__ void __launch_bounds__(kMqaCheckThreads) mqa_logits_check_kernel(const MqaLogitsParams a) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int32_t bits = 0;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.seq_len; i += stride)
    bits |= mqa_logits_check_row(a, i);
  if (bits != 0) atomicOr(a.status, bits);
}

}  // namespace detail

void mqa_logits(const MqaLogitsParams& p, Stream stream) {
  validate(p);
  DSA_GPU_CHECK(cudaMemsetAsync(p.status, 0, sizeof(std::int32_t), stream));
  if (p.seq_len == 0) return;
  const std::int64_t blocks =
      std::min<std::int64_t>((p.seq_len + detail::kMqaCheckThreads - 1) / detail::kMqaCheckThreads, 1024);
  detail::mqa_logits_check_kernel<<<static_cast<unsigned>(blocks), detail::kMqaCheckThreads, 0, stream>>>(p);
  DSA_GPU_CHECK_LAUNCH();
  if (p.seq_len_kv == 0) return;
  detail::LogitsArgs a;
  a.q = p.q;
  a.q_fp8 = p.q_fp8;
  a.k_fp8 = p.k_fp8;
  a.weights = p.weights;
  a.rows = p.seq_len;
  a.group_rows = detail::kLogitsMaxGroupRows;
  a.width = p.seq_len_kv;
  a.logits = p.logits;
  a.row_stride = p.logits_row_stride;
  a.status = p.status;
  a.k_aligned16 = reinterpret_cast<std::uintptr_t>(p.k) % 16 == 0;
  detail::FlatKSource src;
  src.k = p.k;
  src.k_scales = p.k_scales;
  src.ks = p.ks;
  src.ke = p.ke;
  src.seq_len_kv = p.seq_len_kv;
  const std::int64_t groups = (p.seq_len + detail::kLogitsMaxGroupRows - 1) / detail::kLogitsMaxGroupRows;
  detail::dispatch_logits_kernel(a, src, groups, p.num_heads, stream);
}

void mqa_logits_warmup() {
  cudaFuncAttributes attributes;
  DSA_GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(detail::mqa_logits_check_kernel)));
  detail::warm_logits_kernels<detail::FlatKSource>();
}

}  // namespace dsa::gpu
