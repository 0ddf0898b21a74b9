// quantize_index_k kernels, templated on the K-cache layout; instantiated once per layout in
// gpu/instances/index_k_store_<layout>.cu. One 32-lane group per row: amax over the row (max is
// exact in any order), the scale by dsa::index_k_token_scale, the codes by dsa::f32_to_fp8 — the
// reference's own host/device functions, so the bytes are the CPU writer's.
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <cmath>
#include <cstdint>

#include "dsa/caches.hpp"
#include "dsa/error.hpp"
#include "dsa/formats.hpp"
#include "dsa/gpu/index_k_store.hpp"
#include "dsa/gpu/mma_fp8.hpp"
#include "dsa/layouts.hpp"
#include "dsa/quantize.hpp"

namespace dsa::gpu::detail {

inline constexpr int kIndexKStoreThreads = 256;
inline constexpr int kIndexKStoreRowsPerCta = kIndexKStoreThreads / kMmaLanes;

// Status bits of row i's slot.
DSA_HD inline std::int32_t index_k_store_check_item(const IndexKStoreParams& a, std::int64_t i) {
  const std::int64_t s = a.slot_mapping[i];
  const std::int64_t capacity = a.cache.num_blocks * a.cache.page_tokens;
  return s == -1 || (s >= 0 && s < capacity) ? 0 : kIndexKStoreBadSlot;
}

// Zeroes *status and checks every slot (gpu/index_k_store.cu).
void launch_index_k_store_checks(const IndexKStoreParams& a, Stream stream);

// std::max(amax, |x|) as the CPU writer folds it (a NaN |x| leaves amax unchanged).
DSA_HD inline float amax_fold(float amax, float x) {
  const float ax = std::fabs(x);
  return amax < ax ? ax : amax;
}

template <IndexKLayout L>
__global__ void __launch_bounds__(kIndexKStoreThreads) index_k_store_kernel(const IndexKStoreParams a, float fmax) {
  if (*a.status != 0) return;  // a slot broke the rule: write nothing
  const int lane = static_cast<int>(threadIdx.x) % kMmaLanes;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kIndexKStoreRowsPerCta;
  const int D = a.cache.head_dim;
  const std::int32_t P = a.cache.page_tokens;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kIndexKStoreRowsPerCta + threadIdx.x / kMmaLanes;
       i < a.n; i += stride) {
    const std::int64_t slot = a.slot_mapping[i];
    if (slot == -1) continue;
    const float* x = a.k + i * D;
    float amax = 0.0f;
    for (int d = lane; d < D; d += kMmaLanes) amax = amax_fold(amax, x[d]);
#pragma unroll
    for (int m = kMmaLanes / 2; m > 0; m >>= 1) {
      const float other = shfl_xor_group32(amax, m);
      amax = amax < other ? other : amax;
    }
    const float s = index_k_token_scale(amax, fmax, a.ue8m0_scale);
    const std::int64_t block = slot / P, t = slot % P;
    std::uint8_t* page = a.cache_bytes + block * a.cache.block_stride_bytes;
    for (int d = lane; d < D; d += kMmaLanes)
      page[layout::IndexK::value_offset(L, D, t, d)] = f32_to_fp8(x[d] / s, a.cache.fp8, Overflow::saturate);
    // Little-endian bytes: the scale sits at P·D + 4t, 4-byte aligned only when D is.
    if (lane < 4) page[layout::IndexK::scale_offset(P, D, t) + lane] = static_cast<std::uint8_t>(f32_bits(s) >> (8 * lane));
  }
}

template <IndexKLayout L>
void launch_index_k_store(const IndexKStoreParams& a, Stream stream) {
  launch_index_k_store_checks(a, stream);
  if (a.n == 0) return;
  const float fmax = a.fmax > 0.0f ? a.fmax : fp8_max(a.cache.fp8);
  const std::int64_t ctas = (a.n + kIndexKStoreRowsPerCta - 1) / kIndexKStoreRowsPerCta;
  index_k_store_kernel<L><<<static_cast<unsigned>(ctas < 65536 ? ctas : 65536), kIndexKStoreThreads, 0, stream>>>(a, fmax);
  DSA_GPU_CHECK_LAUNCH();
}

}  // namespace dsa::gpu::detail

namespace dsa::gpu {

template <IndexKLayout L>
void quantize_index_k_as(const IndexKStoreParams& p, Stream stream) {
  dsa::require_layout(p.cache, L, "cache");
  validate(p);
  detail::launch_index_k_store<L>(p, stream);
}

}  // namespace dsa::gpu

namespace dsa::gpu::detail {
// Loads the kernel of layout L (SPEC §7 warm-up).
template <IndexKLayout L>
void warm_index_k_store_kernel() {
  cudaFuncAttributes attributes;
  DSA_GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(index_k_store_kernel<L>)));
}
extern template void warm_index_k_store_kernel<IndexKLayout::standard>();
extern template void warm_index_k_store_kernel<IndexKLayout::preshuffle>();
}  // namespace dsa::gpu::detail

// One explicit instantiation per file under gpu/instances/: the launch and the warm-up.
#define DSA_INSTANTIATE_INDEX_K_STORE(L)                                     \
  template void quantize_index_k_as<L>(const IndexKStoreParams&, Stream);    \
  template void detail::warm_index_k_store_kernel<L>();
