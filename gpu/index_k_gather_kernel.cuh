// gather_index_k kernels, templated on the K-cache layout; instantiated once per layout in
// gpu/instances/. The per-item bodies are host/device, so a test can run them on the CPU.
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <algorithm>
#include <cstdint>

#include "dsa/caches.hpp"
#include "dsa/gpu/index_k_gather.hpp"
#include "dsa/layouts.hpp"
#include "dsa/mla_read.hpp"

namespace dsa::gpu::detail {

inline constexpr int kIndexKThreads = 256;
// Blocks per sequence along its pages: enough to spread a long sequence over many SMs while
// each block still copies whole pages.
inline constexpr int kIndexKMaxPageBlocks = 32;

DSA_HD inline std::int64_t index_k_pages(std::int64_t len, std::int32_t page_tokens) {
  return (len + page_tokens - 1) / page_tokens;
}

// A seq_lens entry as the total check counts it: a bad entry is reported by its own bit and must
// not also make the total look too large (or small).
DSA_HD inline std::int64_t index_k_clamped_len(std::int64_t len, std::int64_t max_len) {
  return len < 0 ? 0 : (len > max_len ? max_len : len);
}

// Check item i of [0, batch·(max_blocks + 1)): (b, p) with p < max_blocks checks block-table
// entry p of sequence b if the sequence uses it; p == max_blocks checks seq_lens[b]. Returns the
// status bits it found.
DSA_HD inline std::int32_t index_k_check_item(const IndexKGatherParams& a, std::int64_t i) {
  const std::int64_t b = i / (a.max_blocks + 1);
  const std::int64_t p = i % (a.max_blocks + 1);
  const std::int64_t len = a.seq_lens[b];
  const bool len_ok = len >= 0 && len <= a.max_blocks * a.cache.page_tokens;
  if (p == a.max_blocks) return len_ok ? 0 : kIndexKBadSeqLen;
  if (!len_ok || p >= index_k_pages(len, a.cache.page_tokens)) return 0;
  const std::int64_t block = a.block_table[b * a.max_blocks + p];
  return block >= 0 && block < a.cache.num_blocks ? 0 : kIndexKBadBlockTable;
}

// Copies page p of sequence b (output rows from `row0`) by the threads `tid` of `nthreads`.
// Reads only bytes the layout places inside page block_table[b][p].
template <dsa::IndexKLayout L>
DSA_HD inline void index_k_copy_page(const IndexKGatherParams& a, std::int64_t b, std::int64_t p, std::int64_t row0,
                                     std::int64_t len, int tid, int nthreads) {
  const std::int32_t P = a.cache.page_tokens, D = a.cache.head_dim;
  const std::int64_t block = a.block_table[b * a.max_blocks + p];
  const std::uint8_t* page = a.cache_bytes + block * a.cache.block_stride_bytes;
  const std::int64_t rest = len - p * P;
  const std::int64_t ntok = rest < P ? rest : P;
  std::uint8_t* out = a.out_codes + (row0 + p * P) * D;
  for (std::int64_t e = tid; e < ntok * D; e += nthreads) {  // d fastest: coalesced writes
    const std::int64_t t = e / D;
    const int d = static_cast<int>(e % D);
    out[e] = page[layout::IndexK::value_offset(L, D, t, d)];
  }
  for (std::int64_t t = tid; t < ntok; t += nthreads)
    a.out_scales[row0 + p * P + t] = dsa::load_le_f32(page + layout::IndexK::scale_offset(P, D, t));
}

// Σ_{i < n} seq_lens[i] (each clamped to [0, max_len]) over the block, returned to every thread.
__device__ inline long long index_k_block_sum(const std::int32_t* seq_lens, std::int64_t n, std::int64_t max_len) {
  __shared__ long long partial[kIndexKThreads / kWarpSize];
  long long v = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) v += index_k_clamped_len(seq_lens[i], max_len);
  v = warp_sum(v);
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  long long total = 0;
  for (int w = 0; w < kIndexKThreads / kWarpSize; ++w) total += partial[w];
  __syncthreads();  // partial[] is reused by the next call
  return total;
}

// Zeroes *status and runs the table checks (gpu/index_k_gather.cu).
void launch_index_k_checks(const IndexKGatherParams& a, Stream stream);

// Block (b, y) copies pages y, y + gridDim.y, … of sequence b, after the checks passed.
template <dsa::IndexKLayout L>
__global__ void __launch_bounds__(kIndexKThreads) index_k_gather_kernel(const IndexKGatherParams a) {
  if (*a.status != 0) return;  // a table broke a rule: write nothing
  const std::int64_t b = blockIdx.x;
  const std::int64_t row0 = index_k_block_sum(a.seq_lens, b, a.max_blocks * a.cache.page_tokens);
  const std::int64_t len = a.seq_lens[b];
  for (std::int64_t p = blockIdx.y; p < index_k_pages(len, a.cache.page_tokens); p += gridDim.y)
    index_k_copy_page<L>(a, b, p, row0, len, threadIdx.x, blockDim.x);
}

template <dsa::IndexKLayout L>
void launch_index_k_gather(const IndexKGatherParams& a, Stream stream) {
  launch_index_k_checks(a, stream);
  if (a.batch == 0) return;
  const dim3 grid(static_cast<unsigned>(a.batch),
                  static_cast<unsigned>(std::clamp<std::int64_t>(a.max_blocks, 1, kIndexKMaxPageBlocks)));
  index_k_gather_kernel<L><<<grid, kIndexKThreads, 0, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
}

}  // namespace dsa::gpu::detail

namespace dsa::gpu {

template <dsa::IndexKLayout L>
void gather_index_k_as(const IndexKGatherParams& p, Stream stream) {
  dsa::require_layout(p.cache, L, "cache");
  validate(p);
  detail::launch_index_k_gather<L>(p, stream);
}

// One explicit instantiation per file under gpu/instances/.
#define DSA_INSTANTIATE_INDEX_K_GATHER(L) template void gather_index_k_as<L>(const IndexKGatherParams&, Stream);

}  // namespace dsa::gpu
