// The Hopper streaming path of paged_mqa_logits (sm_90a, CUDA): pages of 64k tokens whose K tiles
// arrive by bulk copy (TMA) into a ring of shared-memory stages, one producer warp keeping the ring
// full across sequences and one consumer warpgroup multiplying with fp8 wgmma. Included by
// paged_mqa_logits_kernel.cuh, which picks it when the cache allows (kernel limits below) and
// falls back to mqa_logits_kernel.cuh's kernels otherwise.
//
// Why: the logits are bound by reading K (132 B per token against 124 FLOP per byte that fp8 wgmma
// does in a quarter of the time), so the kernel must keep the copy engine busy. The per-thread
// cp.async path restarted its pipeline at every work unit and spent issue slots on 512 copies per
// tile; here a 64-token tile is one or two bulk copies and the ring never drains between units.
//
// Work: items (sequence b, 64-token tile k of [0, max_ctx)) in b-major order; CTA c of the
// persistent grid takes a contiguous range of ⌊n/G⌋ or ⌈n/G⌉ items (the longer ranges to the
// lowest c), so it reloads q only when its sequence changes. Tiles outside every row's visible
// range are not loaded: the consumer writes their −inf. Both roles walk the same items and agree
// on which are loaded.
//
// Producer (warp 4): looks up the blocks of the next 32 items in parallel (one lane each), then
// lane 0 issues their copies in order: wait until stage s is free (empty[s]), announce the bytes
// on full[s], copy the 64 × 128 B codes and the 64 fp32 scales.
//   - standard pages: a 3-D tensor map over the cache (128 B × page tokens × blocks) with the
//     128-byte swizzle: token r's 16-byte chunk j lands at r·128 + 16·(j ^ r % 8);
//   - preshuffle pages: the tile is 8 KB of consecutive bytes (four 16-token groups of eight
//     16 × 16-byte tiles), copied as is.
// Consumer (warps 0–3): per loaded tile, ldmatrix gives each warp the A fragments of its 16 tokens
// (one 8 × 16-byte matrix = 8 tokens × one chunk; conflict-free in both shared layouts), the stage
// is released, and wgmma m64nHk32 with A from registers multiplies them by q (B, in shared memory,
// 128-byte swizzle) — the same instructions and k order (step s = dims 32s..32s+31) for both
// layouts, so standard and preshuffle caches give the same bits. The epilogue is the one of
// mqa_logits_wgmma.cuh (per token: heads in order, then the quad, then s_K · sum).
#pragma once

#if !defined(DSA_GPU_BACKEND_HIP)
#include <cuda.h>  // CUtensorMap (the type only; the encoder is reached through the runtime)

namespace dsa::gpu::detail {

inline constexpr int kTmaTileTokens = 64;
// One consumer warpgroup per CTA; more CTAs per SM rather than more warpgroups per CTA (measured
// on an H200: 2 warpgroups × 2 CTAs lose to 1 × 4 at every shape).
inline constexpr int kTmaConsumerThreads = 128;
inline constexpr int kTmaThreads = kTmaConsumerThreads + kMmaLanes;  // + the producer warp
// Stages of the ring (the default; DSA_INDEXER_TMA_STAGES overrides it, 2..16, for measurements).
// Consumers per SM matter more than stages per CTA: on an H200, 4 CTAs per SM (the register limit)
// with 2 stages each beat 3, 4, 5 stages and 6 × 3 CTAs, 8 × 2 at every measured shape
// (bench/gpu/INDEXER_NOTES.md): the copies' latency is short next to a tile's wgmma + epilogue.
inline constexpr int kTmaStages = 2;
inline constexpr int kTmaMaxStages = 16;
inline constexpr int kTmaStageBytes = kTmaTileTokens * kLogitsDim;  // 8 KB of codes
inline constexpr int kTmaScaleBytes = kTmaTileTokens * 4;           // 64 fp32 scales
inline constexpr int kTmaMinCtasPerSm = 4;  // ≤ 102 registers per thread

// Dynamic shared memory: 1024 (alignment) + K stages + q [rows][H][128] (both 1024-aligned) +
// scale stages + weights [rows][H] + the rows' visible ranges [4][2] int32 + full and empty barriers.
DSA_HD constexpr int tma_smem_bytes(int heads, int group_rows, int stages) {
  return 1024 + stages * kTmaStageBytes + group_rows * heads * kLogitsDim + stages * kTmaScaleBytes +
         group_rows * heads * 4 + kLogitsMaxGroupRows * 2 * 4 + 2 * stages * 8;
}

#if defined(DSA_WGMMA)
__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(std::uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(std::uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(std::uint64_t* bar, std::uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)),
               "r"(bytes)
               : "memory");
}
// Blocks until the phase of parity `parity` has completed. The suspend-time hint lets the waiting
// warp sleep until the phase completes (up to the hint) instead of spinning on issue slots the
// consumers need.
inline constexpr int kMbarSuspendNs = 1000000;
__device__ __forceinline__ void mbar_wait(std::uint64_t* bar, std::uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1, %2;\n"
      "@!done bra WAIT_%=;\n}\n" ::"r"(smem_u32(bar)),
      "r"(parity), "n"(kMbarSuspendNs)
      : "memory");
}
// The K copies carry an L2 evict_first policy: K is read once per call, and without the hint its
// lines push out what every call reads first and again — the block table, the context lengths, q,
// the weights (and, likely, the burst then also evicts the last call's dirty logits lines).
// Measured on an H200 (B = 64, ctx = 8192): the checks' verdict 4.4 → 3.2 µs, the first tile
// 4.9 → 3.5 µs, a call 25.0 → 23.0 µs (bench/gpu/INDEXER_NOTES.md).
__device__ __forceinline__ std::uint64_t l2_evict_first_policy() {
  std::uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}
__device__ __forceinline__ void tma_load_3d(void* dst, const CUtensorMap* map, int c0, int c1, int c2,
                                            std::uint64_t* bar, std::uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_u32(bar)), "l"(policy)
      : "memory");
}
__device__ __forceinline__ void bulk_load(void* dst, const void* src, std::uint32_t bytes, std::uint64_t* bar,
                                          std::uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\n" ::"r"(
          smem_u32(dst)),
      "l"(src), "r"(bytes), "r"(smem_u32(bar)), "l"(policy)
      : "memory");
}
// Programmatic dependent launch: the kernel is launched while the device-side checks still run
// (paged_logits_check_kernel lets it start once the kernel ahead of the checks has finished); this
// waits until the checks have finished and their *status is visible. Without a programmatic
// launch it returns at once.
__device__ __forceinline__ void wait_for_checks() { wait_for_kernel_ahead(); }

// The consumer warpgroups' own barrier (id 1; __syncthreads is id 0).
__device__ __forceinline__ void consumer_sync() {
  asm volatile("bar.sync 1, %0;\n" ::"n"(kTmaConsumerThreads) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(row))
               : "memory");
}

// acc (+)= A[64 × 32] (registers) · B[32 × H]; scale_d = 0 overwrites.
template <int H>
__device__ __forceinline__ void wg_mma_rs_k32(float (&acc)[H / 2], const std::uint32_t (&a)[4], std::uint64_t db,
                                              int scale_d);

template <>
__device__ __forceinline__ void wg_mma_rs_k32<64>(float (&d)[32], const std::uint32_t (&a)[4], std::uint64_t db,
                                                  int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(scale_d));
}

template <>
__device__ __forceinline__ void wg_mma_rs_k32<32>(float (&d)[16], const std::uint32_t (&a)[4], std::uint64_t db,
                                                  int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
      "{%16, %17, %18, %19}, %20, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(scale_d));
}

// Byte offset, in a stage, of the 16-byte chunk j of tile token r.
template <IndexKLayout L>
__device__ __forceinline__ int tma_chunk_offset(int r, int j) {
  if constexpr (L == IndexKLayout::standard) return wg_chunk_offset(r, j);  // 128-byte swizzle
  else return static_cast<int>(layout::IndexK::preshuffle_offset(kLogitsDim, r, 16 * j));  // the page's own bytes
}

#endif

template <IndexKLayout L, int H>
__global__ void __launch_bounds__(kTmaThreads, kTmaMinCtasPerSm)
    paged_logits_tma_kernel(const __grid_constant__ CUtensorMap kmap, const LogitsArgs a, const PagedKSource<L> src,
                            const int stages) {
#if defined(DSA_WGMMA)
  static_assert(H == 32 || H == 64, "wgmma n = H");
  extern __shared__ __align__(1024) std::uint8_t tma_smem[];
  std::uint8_t* const base = tma_smem + ((1024 - (smem_u32(tma_smem) & 1023)) & 1023);
  std::uint8_t* const k_s = base;
  std::uint8_t* const q_s = k_s + stages * kTmaStageBytes;
  float* const ks_s = reinterpret_cast<float*>(q_s + a.group_rows * H * kLogitsDim);
  float* const w_s = ks_s + stages * kTmaTileTokens;
  std::int32_t* const range_s = reinterpret_cast<std::int32_t*>(w_s + a.group_rows * H);  // [row][begin, end)
  std::uint64_t* const full = reinterpret_cast<std::uint64_t*>(range_s + kLogitsMaxGroupRows * 2);
  std::uint64_t* const empty = full + stages;
  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / kMmaLanes, lane = tid % kMmaLanes;
  if (tid == 0) {
    for (int s = 0; s < stages; ++s) {
      mbar_init(full + s, 1);                          // the producer's arrive (+ the copies' bytes)
      mbar_init(empty + s, 4);   // one arrive per warp of the consuming warpgroup
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  const std::int64_t tiles_w = (a.width + kTmaTileTokens - 1) / kTmaTileTokens;
  const std::int64_t items = a.units;  // groups · tiles_w
  // Contiguous shares, the longer ones (one item more) to the lowest-indexed CTAs: CTAs are
  // dispatched in index order, and the last ones can start late (the checks' cluster holds a few
  // SMs until its verdict), so they take the shorter shares.
  const std::int64_t share = items / gridDim.x, longer = items % gridDim.x;
  const std::int64_t item_begin = share * blockIdx.x + (blockIdx.x < longer ? blockIdx.x : longer);
  const std::int64_t item_end = item_begin + share + (blockIdx.x < longer ? 1 : 0);
  const std::int64_t P = src.page_tokens;

  if (warp == kTmaConsumerThreads / 32) {  // ---- producer warp
    int stage = 0;
    std::uint32_t phase = 0;
    std::int64_t issued = 0;   // tiles copied so far
    bool checked = false;      // the checks' verdict has been read (after the first ring fill)
    const std::uint64_t policy = l2_evict_first_policy();
    for (std::int64_t batch = item_begin; batch < item_end; batch += kMmaLanes) {
      const std::int64_t item = batch + lane;
      bool load = false;
      std::int32_t block = 0, t_in_page = 0;
      if (item < item_end) {
        const std::int64_t group = item / tiles_w, t0 = (item % tiles_w) * kTmaTileTokens;
        const std::int64_t page = t0 / P;
        t_in_page = static_cast<std::int32_t>(t0 - page * P);
        // The table entry is read before the context lengths say whether the tile is needed, so the
        // two loads overlap. The checks may still be running: an entry they will reject is read as
        // block 0, so every copy stays inside the cache (its bytes are never used: nothing is
        // written then).
        const std::int64_t e = page < src.max_blocks ? src.block_table[group * src.max_blocks + page] : -1;
        std::int64_t lo, hi;
        int nrows;
        group_span(src, a, group, lo, hi, nrows);
        load = lo < hi && t0 < hi && t0 + kTmaTileTokens > lo;
        block = e >= 0 && e < src.num_blocks ? static_cast<std::int32_t>(e) : 0;
      }
      std::uint32_t pending = __ballot_sync(0xFFFFFFFFu, load);
      while (pending != 0) {
        const int j = __ffs(static_cast<int>(pending)) - 1;
        pending &= pending - 1;
        const std::int32_t blk = __shfl_sync(0xFFFFFFFFu, block, j);
        const std::int32_t tp = __shfl_sync(0xFFFFFFFFu, t_in_page, j);
        if (!checked && issued == stages) {
          checked = true;
          wait_for_checks();
          if (*a.status != 0) {  // bad inputs: the consumers write nothing and leave; let the copies land
            if (lane == 0)
              for (int s = 0; s < stages; ++s) mbar_wait(full + s, 0);
            return;
          }
        }
        ++issued;
        if (lane == 0) {
          mbar_wait(empty + stage, phase ^ 1);
          mbar_arrive_expect_tx(full + stage, kTmaStageBytes + kTmaScaleBytes);
          const std::uint8_t* page = src.cache + static_cast<std::int64_t>(blk) * src.block_stride;
          std::uint8_t* dst = k_s + stage * kTmaStageBytes;
          if constexpr (L == IndexKLayout::standard) tma_load_3d(dst, &kmap, 0, tp, blk, full + stage, policy);
          else
            bulk_load(dst, page + layout::IndexK::preshuffle_offset(kLogitsDim, tp, 0), kTmaStageBytes, full + stage,
                      policy);
          bulk_load(ks_s + stage * kTmaTileTokens, page + layout::IndexK::scale_offset(P, kLogitsDim, tp),
                    kTmaScaleBytes, full + stage, policy);
        }
        if (++stage == stages) stage = 0, phase ^= 1;
      }
    }
    if (!checked) {  // fewer tiles than stages: the same rule for the ones issued
      wait_for_checks();
      if (*a.status != 0 && lane == 0)
        for (std::int64_t s = 0; s < issued; ++s) mbar_wait(full + s, 0);
    }
    return;
  }

  // ---- consumer warpgroup
  const int g = lane / 4, c = lane % 4;
  const float kMasked = f32_from_bits(0xFF800000u);  // −inf
  // ldmatrix rows: lane l gives row l % 8 of matrix l / 8 = (tokens + 8·(bit 0), chunk + bit 1).
  const int ld_tok = 16 * warp + (lane & 7) + 8 * ((lane >> 3) & 1);
  const int ld_chunk = lane >> 4;
  const int tok = 16 * warp + g + 8 * (c & 1);  // the token lanes c = 0, 1 write
  // q's descriptor in two halves: the start address (bits 0–13) never carries out of the low half,
  // so row i, step s is the low half + (i·H·128 + 32·s) / 16.
  const std::uint64_t q_desc = wg_desc(q_s);
  const auto q_desc_lo = static_cast<std::uint32_t>(q_desc), q_desc_hi = static_cast<std::uint32_t>(q_desc >> 32);
  constexpr std::uint32_t kRowDesc = H * kLogitsDim / 16;
  int stage = 0;
  std::uint32_t phase = 0;
  if (item_begin >= item_end) return;
  // Positions are < 2^31 (the host checks max_ctx): tiles and positions in 32 bits.
  const std::int64_t g_first = item_begin / tiles_w, g_last = (item_end - 1) / tiles_w;
  for (std::int64_t group = g_first; group <= g_last; ++group) {
    const auto k_begin = static_cast<std::int32_t>(group == g_first ? item_begin % tiles_w : 0);
    const auto k_end = static_cast<std::int32_t>(group == g_last ? (item_end - 1) % tiles_w + 1 : tiles_w);
    std::int64_t lo64, hi64;
    int nrows;
    group_span(src, a, group, lo64, hi64, nrows);
    const auto lo = static_cast<std::int32_t>(lo64), hi = static_cast<std::int32_t>(hi64);
    const std::int64_t row0 = group * a.group_rows;
    float* const out0 = a.logits + row0 * a.row_stride + tok;  // row 0, this lane's token of tile 0
    consumer_sync();  // every wgmma and epilogue of the previous group is done with q_s / w_s / range_s
    for (int idx = tid; idx < nrows * H * kLogitsChunks; idx += kTmaConsumerThreads) {
      const int j = idx % kLogitsChunks, h = (idx / kLogitsChunks) % H, r = idx / (kLogitsChunks * H);
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(a.q + ((row0 + r) * H + h) * kLogitsDim) + j);
      *reinterpret_cast<uint4*>(q_s + r * H * kLogitsDim + wg_chunk_offset(h, j)) = v;
    }
    for (int idx = tid; idx < nrows * H; idx += kTmaConsumerThreads) w_s[idx] = a.weights[row0 * H + idx];
    if (tid < nrows) {
      const VisibleRange v = src.range(group, row0, tid);
      range_s[2 * tid] = static_cast<std::int32_t>(v.begin);
      range_s[2 * tid + 1] = static_cast<std::int32_t>(v.end);
    }
    fence_proxy_async_smem();  // q_s is read by the tensor cores (async proxy)
    consumer_sync();
    if (group == g_first) {  // nothing is written before the checks have passed
      wait_for_checks();
      if (*a.status != 0) return;
    }
    for (std::int32_t k = k_begin; k < k_end; ++k) {
      const std::int32_t t0 = k * kTmaTileTokens;
      const std::int32_t t_end = t0 + kTmaTileTokens < a.width ? t0 + kTmaTileTokens : static_cast<std::int32_t>(a.width);
      if (!(t0 < hi && t0 + kTmaTileTokens > lo)) {  // not loaded: −inf
        for (int idx = tid; idx < nrows * kTmaTileTokens; idx += kTmaConsumerThreads) {
          const std::int32_t t = t0 + idx % kTmaTileTokens;
          if (t < t_end) out0[(idx / kTmaTileTokens) * a.row_stride + t - tok] = kMasked;
        }
        continue;
      }
      const int st = stage;
      const std::uint32_t ph = phase;
      if (++stage == stages) stage = 0, phase ^= 1;
      mbar_wait(full + st, ph);
      const std::uint8_t* k_stage = k_s + st * kTmaStageBytes;
      std::uint32_t frag[4][4];
#pragma unroll
      for (int s = 0; s < 4; ++s) ldmatrix_x4(frag[s], k_stage + tma_chunk_offset<L>(ld_tok, 2 * s + ld_chunk));
      const float scale = ks_s[st * kTmaTileTokens + tok];
      __syncwarp();
      if (lane == 0) mbar_arrive(empty + st);  // the warp's reads of the stage are done

      const std::int32_t t_w = t0 + tok;
      const bool writes = c < 2 && t_w < t_end;
      float* out = out0 + t0;
      for (int i = 0; i < nrows; ++i, out += a.row_stride) {
        float acc[H / 2];
        const std::uint32_t row_desc = q_desc_lo + static_cast<std::uint32_t>(i) * kRowDesc;
        wg_fence();
#pragma unroll
        for (int s = 0; s < 4; ++s)
          wg_mma_rs_k32<H>(acc, frag[s], (static_cast<std::uint64_t>(q_desc_hi) << 32) | (row_desc + 2 * s), s);
        wg_commit();
        wg_wait_all();
        wg_pin(acc);
        const float sum = wg_token_head_sum<H>(acc, w_s + i * H, c);
        if (writes) {
          const bool visible = t_w >= range_s[2 * i] && t_w < range_s[2 * i + 1];
          *out = visible ? mqa_formula::finish<KScaleAt::after_head_sum>(sum, scale) : kMasked;
        }
      }
    }
  }
#endif
}

// Encodes the standard-layout tensor map of the cache (host; gpu/paged_mqa_logits.cu): 3-D
// (128 B, page tokens, blocks), box 128 × 64 × 1, 128-byte swizzle, no L2 promotion. Throws on a
// driver error.
void encode_index_k_tensor_map(CUtensorMap* map, const std::uint8_t* cache, std::int64_t page_tokens,
                               std::int64_t block_stride_bytes, std::int64_t num_blocks);

// Whether a call may take this path: sm_90 device, the wgmma path chosen (both e4m3fn, not
// DSA_INDEXER_MMA=sync), pages of 64k tokens, 16-byte aligned pages, and DSA_INDEXER_TMA ≠ 0.
bool paged_logits_tma_eligible(const PagedMqaLogitsParams& p);
bool paged_logits_tma_disabled();

// The ring's stage count: kTmaStages, or DSA_INDEXER_TMA_STAGES (read once).
int paged_logits_tma_stages();

template <IndexKLayout L, int H>
int paged_logits_tma_occupancy(int group_rows) {
  struct Table {
    int ctas[kLogitsMaxGroupRows + 1];
  };
  static const Table table = [] {
    const auto kernel = paged_logits_tma_kernel<L, H>;
    const int stages = paged_logits_tma_stages();
    DSA_GPU_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       tma_smem_bytes(H, kLogitsMaxGroupRows, stages)));
    Table t{};
    for (int rows = 1; rows <= kLogitsMaxGroupRows; ++rows) {
      int n = 0;
      DSA_GPU_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, reinterpret_cast<const void*>(kernel), kTmaThreads,
                                                                    tma_smem_bytes(H, rows, stages)));
      t.ctas[rows] = n < 1 ? 1 : n;
    }
    return t;
  }();
  return table.ctas[group_rows];
}

template <IndexKLayout L, int H>
void launch_paged_logits_tma(LogitsArgs a, const PagedKSource<L>& src, const PagedMqaLogitsParams& p, Stream stream) {
  CUtensorMap map{};
  if constexpr (L == IndexKLayout::standard)
    encode_index_k_tensor_map(&map, p.cache_bytes, p.cache.page_tokens, p.cache.block_stride_bytes, p.cache.num_blocks);
  int device = 0, sms = 0;
  DSA_GPU_CHECK(cudaGetDevice(&device));
  DSA_GPU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int rows = static_cast<int>(a.group_rows);
  const std::int64_t resident = static_cast<std::int64_t>(sms) * paged_logits_tma_occupancy<L, H>(rows);
  a.units = p.batch * ((a.width + kTmaTileTokens - 1) / kTmaTileTokens);
  const std::int64_t grid = a.units < resident ? a.units : resident;
  // A programmatic launch: the kernel starts while the checks run (see wait_for_checks).
  const int stages = paged_logits_tma_stages();
  launch_programmatic(paged_logits_tma_kernel<L, H>, dim3(static_cast<unsigned>(grid)), dim3(kTmaThreads),
                      static_cast<std::size_t>(tma_smem_bytes(H, rows, stages)), stream, map, a, src, stages);
}

}  // namespace dsa::gpu::detail
#endif  // !DSA_GPU_BACKEND_HIP

