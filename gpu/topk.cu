// topk_indices on the GPU: the kernel (see gpu/topk_kernel.cuh), its launch and warm-up.
#include "topk_kernel.cuh"

namespace dsa::gpu {
namespace detail {

// The ballot of the calling lane's 32-lane group, lane l of the group in bit l.
__device__ __forceinline__ std::uint32_t ballot_group32(bool pred) {
#if defined(DSA_GPU_BACKEND_HIP)
  const unsigned long long all = __ballot(pred);
  return static_cast<std::uint32_t>(all >> (32 * ((threadIdx.x / 32) % (kWarpSize / 32))));
#else
  return __ballot_sync(0xFFFFFFFFu, pred);
#endif
}

__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const TopkParams a) {
  __shared__ std::uint32_t hist[kTopkGroups][kTopkBins];
  __shared__ std::uint32_t total[kTopkBins];
  __shared__ std::uint32_t chosen_prefix, chosen_rest;
  __shared__ std::uint32_t group_gt[kTopkGroups], group_eq[kTopkGroups];

  const std::int64_t row = blockIdx.x;
  const int tid = static_cast<int>(threadIdx.x);
  const int group = tid / 32, lane = tid % 32;
  const VisibleRange v = topk_row_range(a, row);
  const float* x = a.logits + row * a.row_stride;
  std::int32_t* out = a.indices + row * a.k;
  const std::int64_t n = v.size();
  if (n <= a.k) {  // every visible position, then −1
    for (std::int64_t j = tid; j < a.k; j += kTopkThreads)
      out[j] = j < n ? static_cast<std::int32_t>(v.begin + j) : -1;
    return;
  }

  // Radix select, most significant digit first: after the passes, `prefix` is the key T of the
  // k-th largest visible logit and `rest` the number of logits equal to T that the k take.
  std::uint32_t prefix = 0, mask = 0, rest = static_cast<std::uint32_t>(a.k);
  for (int shift = 32 - kTopkDigitBits; shift >= 0; shift -= kTopkDigitBits) {
    for (int b = tid; b < kTopkGroups * kTopkBins; b += kTopkThreads) (&hist[0][0])[b] = 0;
    __syncthreads();
    for (std::int64_t i = v.begin + tid; i < v.end; i += kTopkThreads) {
      const std::uint32_t key = topk_key(x[i]);
      if ((key & mask) == prefix) atomicAdd(&hist[group][(key >> shift) & (kTopkBins - 1)], 1u);
    }
    __syncthreads();
    for (int b = tid; b < kTopkBins; b += kTopkThreads) {
      std::uint32_t s = 0;
      for (int g = 0; g < kTopkGroups; ++g) s += hist[g][b];
      total[b] = s;
    }
    __syncthreads();
    if (group == 0) {
      // Lane l holds the bins 255 − 8l − 7 … 255 − 8l (descending digits), their sum, and the
      // count of all bins above them.
      constexpr int kPer = kTopkBins / 32;
      std::uint32_t mine = 0;
      for (int j = 0; j < kPer; ++j) mine += total[kTopkBins - 1 - kPer * lane - j];
      std::uint32_t above = mine;  // inclusive scan from lane 0 (the top bins) down
      for (int d = 1; d < 32; d <<= 1) {
#if defined(DSA_GPU_BACKEND_HIP)
        const std::uint32_t o = __shfl_up(above, d, 32);
#else
        const std::uint32_t o = __shfl_up_sync(0xFFFFFFFFu, above, d, 32);
#endif
        if (lane >= d) above += o;
      }
      above -= mine;  // exclusive
      if (above < rest && rest <= above + mine) {
        for (int j = 0; j < kPer; ++j) {
          const int digit = kTopkBins - 1 - kPer * lane - j;
          if (rest <= above + total[digit]) {
            chosen_prefix = prefix | (static_cast<std::uint32_t>(digit) << shift);
            chosen_rest = rest - above;
            break;
          }
          above += total[digit];
        }
      }
    }
    __syncthreads();
    prefix = chosen_prefix;
    rest = chosen_rest;
    mask |= static_cast<std::uint32_t>(kTopkBins - 1) << shift;
  }

  // Group g owns the contiguous positions [begin + g·seg, begin + (g + 1)·seg), read 32 at a time.
  const std::int64_t seg = ((n + kTopkGroups - 1) / kTopkGroups + 31) / 32 * 32;
  const std::int64_t s_begin = v.begin + group * seg;
  const std::int64_t s_end = s_begin + seg < v.end ? s_begin + seg : v.end;
  std::uint32_t gt = 0, eq = 0;
  for (std::int64_t i0 = s_begin; i0 < s_end; i0 += 32) {
    const std::int64_t i = i0 + lane;
    const std::uint32_t key = i < s_end ? topk_key(x[i]) : 0u;
    gt += __popc(ballot_group32(i < s_end && key > prefix));
    eq += __popc(ballot_group32(i < s_end && key == prefix));
  }
  if (lane == 0) group_gt[group] = gt, group_eq[group] = eq;
  __syncthreads();
  std::uint32_t gt_base = 0, eq_base = 0;
  for (int g = 0; g < group; ++g) gt_base += group_gt[g], eq_base += group_eq[g];
  const std::uint32_t eq_slot0 = static_cast<std::uint32_t>(a.k) - rest;  // ties follow the larger ones
  const std::uint32_t below = (1u << lane) - 1u;
  for (std::int64_t i0 = s_begin; i0 < s_end; i0 += 32) {
    const std::int64_t i = i0 + lane;
    const std::uint32_t key = i < s_end ? topk_key(x[i]) : 0u;
    const bool is_gt = i < s_end && key > prefix, is_eq = i < s_end && key == prefix;
    const std::uint32_t bg = ballot_group32(is_gt), be = ballot_group32(is_eq);
    if (is_gt) out[gt_base + __popc(bg & below)] = static_cast<std::int32_t>(i);
    if (is_eq) {
      const std::uint32_t r = eq_base + __popc(be & below);
      if (r < rest) out[eq_slot0 + r] = static_cast<std::int32_t>(i);
    }
    gt_base += __popc(bg);
    eq_base += __popc(be);
  }
}

}  // namespace detail

void topk_indices(const TopkParams& p, Stream stream) {
  validate(p);
  if (p.rows == 0) return;
  detail::topk_kernel<<<static_cast<unsigned>(p.rows), detail::kTopkThreads, 0, stream>>>(p);
  DSA_GPU_CHECK_LAUNCH();
}

void topk_warmup() {
  cudaFuncAttributes attributes;
  DSA_GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(detail::topk_kernel)));
}

}  // namespace dsa::gpu
