// The Hopper path of the indexer logits kernel (included by mqa_logits_kernel.cuh, whose K
// sources, arguments and copy helpers it shares): one warpgroup per CTA multiplies a 64-token K
// tile by a row's q with fp8 wgmma (m64nHk32, e4m3 × e4m3 → f32, both operands K-major in shared
// memory), 4 instructions for D = 128. sm_90a only (CUDA); elsewhere the kernel body is empty and
// the dispatcher never picks it.
//
// Shared memory, all in the 128-byte-swizzled K-major layout of wgmma: K stage [64 tokens][128 B]
// and q [H heads][128 B], row r at r·128 with its 16-byte chunk j at chunk j ^ (r % 8) (atoms of
// 8 rows × 128 B, 1024-byte aligned; stride byte offset 1024; the k32 step s starts 32·s bytes
// in). Whole rows are contiguous, so the 8 lanes that copy one token's chunks, and the lanes that
// copy one chunk of 8 tokens, hit distinct banks. Every thread copies 4 chunks of a tile by
// cp.async; the shared memory does not depend on the cache layout: standard and preshuffle caches
// give the same instructions and the same bits.
//
// Accumulators (per warp w: tokens 16w + g and 16w + g + 8, heads 8j + 2c, +1 in acc[4j .. 4j+3])
// are summed exactly as the mma.sync path sums its tiles: per token, the lane's heads in head
// order, then the quad (xor 1, xor 2), then s_K · sum.
#pragma once

namespace dsa::gpu::detail {

inline constexpr int kWgTileTokens = 64;
// Tiles in flight per CTA: 3 ahead of the one being multiplied (32 KB of stages; with q of one row
// about 42 KB per CTA, so 5 CTAs = 20 warps and 120 KB of loads in flight per SM): the loads, not
// the tensor cores, set the pace, and their latency under load is microseconds.
inline constexpr int kWgStages = 4;
// CTAs per SM the register allocation is sized for (≤ 128 registers per thread).
inline constexpr int kWgMinCtasPerSm = 4;
inline constexpr int kWgStageBytes = kWgTileTokens * kLogitsDim;  // 8 KB
inline constexpr int kWgChunksPerThread = kWgTileTokens * kLogitsChunks / kLogitsThreads;  // 4
// Scales are read by the epilogue after the tile's barrier, when a faster warp may already issue
// the copies of the next tile but one: one slot more than K stages keeps them apart.
inline constexpr int kWgScaleSlots = kWgStages + 1;

#if !defined(DSA_GPU_BACKEND_HIP)
inline constexpr bool kWgmmaAvailable = true;
#else
inline constexpr bool kWgmmaAvailable = false;
#endif

// Dynamic shared memory: K stages, q [rows][H][128 B] (both 1024-byte aligned), scale slots,
// weights [rows][H]; plus 1024 bytes to align the base.
DSA_HD constexpr int wg_smem_bytes(int heads, int group_rows) {
  return 1024 + kWgStages * kWgStageBytes + group_rows * heads * kLogitsDim + kWgScaleSlots * kWgTileTokens * 4 +
         group_rows * heads * 4;
}

// Byte offset of the 16-byte chunk j of row r in the 128-byte swizzle.
DSA_HD constexpr int wg_chunk_offset(int r, int j) { return r * 128 + ((j ^ (r % 8)) << 4); }

#if defined(__CUDA_ARCH__) && !defined(DSA_GPU_BACKEND_HIP)
#if __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DSA_WGMMA 1
#endif
#endif

#if defined(DSA_WGMMA)
// Matrix descriptor, K-major with 128-byte swizzle: start address >> 4, leading byte offset 1
// (unused by this mode), stride byte offset 1024 >> 4, layout type 1 (SWIZZLE_128B) in bits 62-63.
__device__ __forceinline__ std::uint64_t wg_desc(const void* smem) {
  const auto addr = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (std::uint64_t{1} << 16) |
         (static_cast<std::uint64_t>(1024 >> 4) << 32) | (std::uint64_t{1} << 62);
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_pin(float (&acc)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}

// acc (+)= A[64 × 32] · B[32 × H]; scale_d = 0 overwrites.
template <int H>
__device__ __forceinline__ void wg_mma_k32(float (&acc)[H / 2], std::uint64_t da, std::uint64_t db, int scale_d);

template <>
__device__ __forceinline__ void wg_mma_k32<64>(float (&d)[32], std::uint64_t da, std::uint64_t db, int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "%32, %33, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(scale_d));
}

template <>
__device__ __forceinline__ void wg_mma_k32<32>(float (&d)[16], std::uint64_t da, std::uint64_t db, int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
      "%16, %17, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(da), "l"(db), "r"(scale_d));
}
// mqa_formula::relu in one instruction: max.NaN keeps a NaN (a NaN code of a visible token makes
// its logit NaN); relu(−0) is +0 here, which can change only the sign of an all-zero head sum.
__device__ __forceinline__ float wg_relu(float x) {
  float r;
  asm("max.NaN.f32 %0, %1, 0f00000000;\n" : "=f"(r) : "f"(x));
  return r;
}

// The epilogue's head sum of one row for the token lane c writes (c = 0: token g, c = 1: token g + 8
// of the warp's 16): per token the lane's heads in head order, w_h·relu(dot_h), then the quad's
// partial sums (xor 1, then xor 2). Lanes c = 2, 3 get a value they do not write.
template <int H>
__device__ __forceinline__ float wg_token_head_sum(const float (&acc)[H / 2], const float* wrow, int c) {
  float sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int nt = 0; nt < H / 8; ++nt) {
    const float2 w = *reinterpret_cast<const float2*>(wrow + nt * 8 + 2 * c);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      sum[half] += w.x * wg_relu(acc[4 * nt + 2 * half]);
      sum[half] += w.y * wg_relu(acc[4 * nt + 2 * half + 1]);
    }
  }
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    sum[half] += shfl_xor_group32(sum[half], 1);
    sum[half] += shfl_xor_group32(sum[half], 2);
  }
  return (c & 1) != 0 ? sum[1] : sum[0];
}
#endif

// Copies of one 64-token tile into a stage, 4 chunks per thread, mapped so that every warp-wide copy
// instruction reads contiguous global memory: token-major K (standard pages, contiguous K) —
// thread t copies chunk t % 8 of tokens t / 8 + 16·m (4 tokens × 128 B per instruction);
// preshuffle pages (16-token × 16-byte tiles) — chunks 4·(t % 2) + m of token t / 2 (16 tokens ×
// 16 B of one tile per half-warp). The thread that copies chunk 0 of a token copies its scale.
// Tokens outside [lo, hi) are zero-filled and never read from global memory.
template <class Src>
__device__ __forceinline__ void wg_copy_chunk(const Src& src, const LogitsArgs& a, std::int64_t group, std::int64_t t0,
                                              std::int64_t lo, std::int64_t hi, int r, int j, const std::uint8_t* pg,
                                              std::int64_t tp, std::uint8_t* stage, float* stage_scales) {
  std::uint8_t* to = stage + wg_chunk_offset(r, j);
  if (pg != nullptr) {
    const std::uint8_t* from = src.chunk(pg, tp, j);
    if (a.k_aligned16) {
      logits_cp16(to, from);
    } else {
#pragma unroll
      for (int w = 0; w < 4; ++w) logits_cp4(to + 4 * w, from + 4 * w);
    }
    if (j == 0) logits_cp4(stage_scales + r, src.scale(pg, tp));
  } else {
    *reinterpret_cast<uint4*>(to) = make_uint4(0, 0, 0, 0);
    if (j == 0) stage_scales[r] = 0.0f;
  }
}

template <class Src>
__device__ __forceinline__ void wg_issue_tile(const Src& src, const LogitsArgs& a, std::int64_t group, std::int64_t t0,
                                              std::int64_t lo, std::int64_t hi, std::uint8_t* stage,
                                              float* stage_scales) {
  const int tid = static_cast<int>(threadIdx.x);
  if constexpr (Src::kTokenMajor) {
    const int j = tid % kLogitsChunks;
    const std::uint8_t* pg[kWgChunksPerThread];
    std::int64_t tp[kWgChunksPerThread];
#pragma unroll
    for (int m = 0; m < kWgChunksPerThread; ++m) {  // the lookups first, independent of each other
      const std::int64_t t = t0 + tid / kLogitsChunks + 16 * m;
      pg[m] = t >= lo && t < hi ? src.page(group, t, tp[m]) : nullptr;
    }
#pragma unroll
    for (int m = 0; m < kWgChunksPerThread; ++m)
      wg_copy_chunk(src, a, group, t0, lo, hi, tid / kLogitsChunks + 16 * m, j, pg[m], tp[m], stage, stage_scales);
  } else {
    const int r = tid / 2, j0 = 4 * (tid % 2);
    const std::int64_t t = t0 + r;
    std::int64_t tp = 0;
    const std::uint8_t* pg = t >= lo && t < hi ? src.page(group, t, tp) : nullptr;
#pragma unroll
    for (int m = 0; m < kWgChunksPerThread; ++m)
      wg_copy_chunk(src, a, group, t0, lo, hi, r, j0 + m, pg, tp, stage, stage_scales);
  }
}

template <class Src, int H>
__global__ void __launch_bounds__(kLogitsThreads, kWgMinCtasPerSm) mqa_logits_wgmma_kernel(const LogitsArgs a,
                                                                                          const Src src) {
#if defined(DSA_WGMMA)
  static_assert(H == 32 || H == 64, "wgmma n = H");
  if (*a.status != 0) return;  // an input broke a device-checked rule: write nothing
  extern __shared__ __align__(1024) std::uint8_t wg_smem[];
  std::uint8_t* const base = wg_smem + ((1024 - (static_cast<std::uint32_t>(__cvta_generic_to_shared(wg_smem)) & 1023)) & 1023);
  std::uint8_t* const k_s = base;
  std::uint8_t* const q_s = base + kWgStages * kWgStageBytes;
  float* const ks_s = reinterpret_cast<float*>(q_s + a.group_rows * H * kLogitsDim);
  float* const w_s = ks_s + kWgScaleSlots * kWgTileTokens;
  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / kMmaLanes, lane = tid % kMmaLanes;
  const int g = lane / 4, c = lane % 4;
  const float kMasked = f32_from_bits(0xFF800000u);  // −inf

  for (std::int64_t unit = blockIdx.x; unit < a.units; unit += gridDim.x) {
    const std::int64_t group = unit / a.chunks;
    const std::int64_t row0 = group * a.group_rows;
    std::int64_t lo, hi;
    int nrows;
    group_span(src, a, group, lo, hi, nrows);
    const std::int64_t t_begin = (unit % a.chunks) * a.chunk_tokens;
    const std::int64_t t_end = t_begin + a.chunk_tokens < a.width ? t_begin + a.chunk_tokens : a.width;
    const std::int64_t ntiles = (t_end - t_begin + kWgTileTokens - 1) / kWgTileTokens;
    std::int64_t k_lo = 0, k_hi = 0;
    if (lo < hi && t_begin < hi && t_end > lo) {
      k_lo = lo > t_begin ? (lo - t_begin) / kWgTileTokens : 0;
      k_hi = (hi - t_begin + kWgTileTokens - 1) / kWgTileTokens;
      k_hi = k_hi < ntiles ? k_hi : ntiles;
    }
    // −inf in the tiles outside [k_lo, k_hi).
    for (std::int64_t k = 0; k < ntiles; ++k) {
      if (k >= k_lo && k < k_hi) continue;
      for (int idx = tid; idx < nrows * kWgTileTokens; idx += kLogitsThreads) {
        const std::int64_t t = t_begin + k * kWgTileTokens + idx % kWgTileTokens;
        if (t < t_end) a.logits[(row0 + idx / kWgTileTokens) * a.row_stride + t] = kMasked;
      }
    }
    if (k_lo >= k_hi) continue;  // uniform over the CTA

    __syncthreads();  // the previous unit's wgmma and epilogue reads of q_s / w_s / stages are done
    for (int idx = tid; idx < nrows * H * kLogitsChunks; idx += kLogitsThreads) {
      const int j = idx % kLogitsChunks, h = (idx / kLogitsChunks) % H, r = idx / (kLogitsChunks * H);
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(a.q + ((row0 + r) * H + h) * kLogitsDim) + j);
      *reinterpret_cast<uint4*>(q_s + r * H * kLogitsDim + wg_chunk_offset(h, j)) = v;
    }
    for (int idx = tid; idx < nrows * H; idx += kLogitsThreads) w_s[idx] = a.weights[row0 * H + idx];

    const std::int64_t n_tiles = k_hi - k_lo;
    auto tile_start = [&](std::int64_t jt) { return t_begin + (k_lo + jt) * kWgTileTokens; };
#pragma unroll
    for (int jt = 0; jt < kWgStages - 1; ++jt) {
      if (jt < n_tiles)
        wg_issue_tile(src, a, group, tile_start(jt), lo, hi, k_s + jt * kWgStageBytes, ks_s + jt * kWgTileTokens);
      logits_cp_commit();
    }
    for (std::int64_t jt = 0; jt < n_tiles; ++jt) {
      const std::int64_t ahead = jt + kWgStages - 1;
      if (ahead < n_tiles) {
        const int sa = static_cast<int>(ahead % kWgStages);
        const int slot = static_cast<int>(ahead % kWgScaleSlots);
        wg_issue_tile(src, a, group, tile_start(ahead), lo, hi, k_s + sa * kWgStageBytes, ks_s + slot * kWgTileTokens);
      }
      logits_cp_commit();
      logits_cp_wait<kWgStages - 1>();  // this thread's copies of tile jt have landed
      fence_proxy_async_smem();         // … and are visible to the tensor cores' reads
      __syncthreads();                  // every thread's copies (and q_s, on the first tile)
      const int st = static_cast<int>(jt % kWgStages);
      const std::uint8_t* stage = k_s + st * kWgStageBytes;

      const std::int64_t t0 = tile_start(jt);
      const int tok = 16 * warp + g + 8 * (c & 1);  // the token lanes c = 0, 1 write
      const float scale = ks_s[static_cast<int>(jt % kWgScaleSlots) * kWgTileTokens + tok];
      // One row at a time: its 4 wgmma, then its epilogue (32 accumulators live; the other CTAs
      // on the SM cover the wait).
      for (int i = 0; i < nrows; ++i) {
        float acc[H / 2];
        wg_fence();
#pragma unroll
        for (int s = 0; s < 4; ++s)
          wg_mma_k32<H>(acc, wg_desc(stage + 32 * s), wg_desc(q_s + i * H * kLogitsDim + 32 * s), s);
        wg_commit();
        wg_wait_all();
        wg_pin(acc);
        const float sum = wg_token_head_sum<H>(acc, w_s + i * H, c);
        const std::int64_t t_w = t0 + tok;
        if (c < 2 && t_w < t_end) {
          const VisibleRange v = src.range(group, row0, i);
          a.logits[(row0 + i) * a.row_stride + t_w] =
              v.contains(t_w) ? mqa_formula::finish<KScaleAt::after_head_sum>(sum, scale)
                              : kMasked;
        }
      }
    }
  }
#endif
}

}  // namespace dsa::gpu::detail
