// The lightning-indexer logits kernel shared by paged_mqa_logits and mqa_logits (SPEC §6.2, §6.3),
// templated on where K comes from (a paged cache of one layout, or a contiguous [S_kv][D] array),
// the head count and the matrix-product path; instantiated in gpu/instances/.
//
// Work: query rows in groups that read one K sequence (paged: the N rows of a sequence; non-paged:
// 4 consecutive rows), the positions [0, width) of a group cut into chunks; a unit = (group, chunk),
// CTAs loop over units. A CTA stages the group's q (fp8) and weights in shared memory; each of its
// 4 warps takes 32-token tiles of the chunk. Per tile a lane loads, for its 4 tokens
// (16·tm + 8·half + g, tm, half ∈ {0, 1}), the 16-byte chunks c and c+4 of the 128 fp8 codes
// (c = lane % 4) into a warp-private shared-memory ring by cp.async, kLogitsStages − 1 tiles ahead
// of the one it multiplies, and reads back exactly the bytes it copied (no barrier between lanes).
// Both layouts keep 16 consecutive dims of a token in 16 consecutive bytes, so the layout changes
// only the addresses, never the registers: the arithmetic is the same for standard and preshuffle
// caches, bit for bit.
//
// The product: tokens × heads = K [32 × 128] · q^T [128 × H] in m16n8k32 fp8 MMAs with the k axis
// permuted — k index 4c + m of step s is dim list_c[8s + m] and 16 + 4c + m is list_c[8s + 4 + m],
// list_c = (chunk c, chunk c+4) — which lets a lane feed its own 32 loaded bytes of a token as its
// A fragment and the same 32 bytes of a head's q as its B fragment. One n8 tile of heads at a time:
// its 8 MMAs, then its heads' w_h·relu(dot_h) into the lane's running fp32 head sums (heads in
// order), so only 8 accumulators are live; then the sums of the 4 lanes of the quad (xor 1, then
// xor 2), then s_K · sum (mqa_logit_formula.hpp). Positions the row does not see are −inf; tiles
// outside every row's range of the group are only filled with −inf.
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include "dsa/gpu/mma_fp8.hpp"
#include "dsa/layouts.hpp"
#include "dsa/mqa_logit_formula.hpp"
#include "dsa/visible_range.hpp"

// Runtime names port.hpp does not map (yet).
#if defined(DSA_GPU_BACKEND_HIP)
#ifndef cudaOccupancyMaxActiveBlocksPerMultiprocessor
#define cudaOccupancyMaxActiveBlocksPerMultiprocessor hipOccupancyMaxActiveBlocksPerMultiprocessor
#endif
#ifndef cudaFuncGetAttributes
#define cudaFuncGetAttributes hipFuncGetAttributes
#define cudaFuncAttributes hipFuncAttributes
#endif
#endif

namespace dsa::gpu::detail {

inline constexpr int kLogitsDim = 128;        // D the kernel is built for
inline constexpr int kLogitsWarps = 4;        // 32-lane groups per CTA
inline constexpr int kLogitsThreads = kLogitsWarps * kMmaLanes;
inline constexpr int kLogitsTileTokens = 32;  // tokens a warp multiplies at once (two m16 tiles)
inline constexpr int kLogitsMaxGroupRows = 4;  // query rows sharing one K sequence in a CTA
// 3 CTAs (12 warps) per SM: a register cap of 168 per thread, and 12 warps × 4 KB of K in flight.
inline constexpr int kLogitsMinCtasPerSm = 3;
inline constexpr int kLogitsChunks = kLogitsDim / 16;

// The arguments every instance shares (the K source is the second kernel argument).
struct LogitsArgs {
  const std::uint8_t* q = nullptr;  // [rows][H][128]
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  Fp8Format k_fp8 = Fp8Format::e4m3fn;
  const float* weights = nullptr;  // [rows][H]
  std::int64_t rows = 0;
  std::int64_t group_rows = 1;     // ≤ kLogitsMaxGroupRows
  std::int64_t width = 0;          // positions written per row
  float* logits = nullptr;
  std::int64_t row_stride = 0;
  const std::int32_t* status = nullptr;  // the device-side checks' verdict; nonzero: write nothing
  std::int64_t chunk_tokens = 0;   // a multiple of kLogitsWarps·kLogitsTileTokens
  std::int64_t chunks = 0;         // per group
  std::int64_t units = 0;          // groups · chunks
  bool k_aligned16 = false;        // every token's 16-byte chunks are 16-byte aligned
};

// K from a paged index K cache of layout L (SPEC §6.1); group = sequence b.
template <IndexKLayout L>
struct PagedKSource {
  static constexpr IndexKLayout kLayout = L;
  static constexpr bool kTokenMajor = L == IndexKLayout::standard;  // a token's 128 codes contiguous
  const std::uint8_t* cache = nullptr;
  std::int64_t block_stride = 0;
  std::int32_t page_tokens = 0;
  const std::int32_t* block_table = nullptr;  // [B][max_blocks]
  std::int64_t max_blocks = 0;
  std::int64_t num_blocks = 0;  // blocks in the cache (the streaming path keeps its copies inside)
  ContextLens lens_kind = ContextLens::per_sequence;
  const std::int32_t* context_lens = nullptr;
  std::int64_t next_n = 1;
  std::int64_t max_ctx = 0;

  // Row i of group (sequence) b; row0 = b·N.
  DSA_HD VisibleRange range(std::int64_t b, std::int64_t, int i) const {
    return paged_visible_range(lens_kind, context_lens, b, i, next_n, max_ctx);
  }
  // The token's page and its index in the page; only for positions a row of the group sees.
  // Positions are < 2^31 (the host checks max_ctx): 32-bit division.
  __device__ const std::uint8_t* page(std::int64_t group, std::int64_t t, std::int64_t& t_in_page) const {
    const auto tt = static_cast<std::uint32_t>(t), P = static_cast<std::uint32_t>(page_tokens);
    const std::uint32_t j = tt / P;
    t_in_page = tt - j * P;
    const std::int64_t block = block_table[group * max_blocks + j];
    return cache + block * block_stride;
  }
  __device__ const std::uint8_t* chunk(const std::uint8_t* pg, std::int64_t t_in_page, int c) const {
    return pg + layout::IndexK::value_offset(L, kLogitsDim, t_in_page, 16 * c);
  }
  __device__ const float* scale(const std::uint8_t* pg, std::int64_t t_in_page) const {
    return reinterpret_cast<const float*>(pg + layout::IndexK::scale_offset(page_tokens, kLogitsDim, t_in_page));
  }
};

// K from a contiguous [S_kv][128] array plus [S_kv] scales; every group reads the same K.
struct FlatKSource {
  static constexpr bool kTokenMajor = true;
  const std::uint8_t* k = nullptr;
  const float* k_scales = nullptr;
  const std::int32_t* ks = nullptr;
  const std::int32_t* ke = nullptr;
  std::int64_t seq_len_kv = 0;

  DSA_HD VisibleRange range(std::int64_t, std::int64_t row0, int i) const {
    return ranged_visible_range(ks[row0 + i], ke[row0 + i], seq_len_kv);
  }
  __device__ const std::uint8_t* page(std::int64_t, std::int64_t t, std::int64_t& t_in_page) const {
    t_in_page = t;
    return k;
  }
  __device__ const std::uint8_t* chunk(const std::uint8_t* pg, std::int64_t t, int c) const {
    return pg + t * kLogitsDim + 16 * c;
  }
  __device__ const float* scale(const std::uint8_t*, std::int64_t t) const { return k_scales + t; }
};

// The union [lo, hi) of the visible ranges of the group's rows (empty: lo ≥ hi).
template <class Src>
__device__ __forceinline__ void group_span(const Src& src, const LogitsArgs& a, std::int64_t group,
                                           std::int64_t& lo, std::int64_t& hi, int& nrows) {
  const std::int64_t row0 = group * a.group_rows;
  nrows = static_cast<int>(a.rows - row0 < a.group_rows ? a.rows - row0 : a.group_rows);
  lo = a.width, hi = 0;
  for (int i = 0; i < nrows; ++i) {
    const VisibleRange v = src.range(group, row0, i);
    if (!v.empty()) {
      lo = v.begin < lo ? v.begin : lo;
      hi = v.end > hi ? v.end : hi;
    }
  }
}

// Asynchronous global → shared copies (cp.async; on HIP plain synchronous copies). A lane reads
// back only what it copied itself, after logits_cp_wait: no barrier is needed between lanes.
__device__ __forceinline__ void logits_cp16(void* smem, const void* gmem) {
#if defined(DSA_GPU_BACKEND_HIP)
  *reinterpret_cast<uint4*>(smem) = *reinterpret_cast<const uint4*>(gmem);
#else
  const auto s = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
#endif
}
__device__ __forceinline__ void logits_cp4(void* smem, const void* gmem) {
#if defined(DSA_GPU_BACKEND_HIP)
  *reinterpret_cast<std::uint32_t*>(smem) = *reinterpret_cast<const std::uint32_t*>(gmem);
#else
  const auto s = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem) : "memory");
#endif
}
__device__ __forceinline__ void logits_cp_commit() {
#if !defined(DSA_GPU_BACKEND_HIP)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
// Waits until at most `kPending` of the lane's most recent commit groups are still in flight.
template <int kPending>
__device__ __forceinline__ void logits_cp_wait() {
#if !defined(DSA_GPU_BACKEND_HIP)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

// Per warp, kLogitsStages tiles of K in flight: [stage][32 tokens][128 B], the 16-byte chunk j of
// token row r stored at chunk j ^ 4·(r & 1) (the 8 lanes of a 16-byte read phase — rows g, g+1 ×
// chunks c — then hit all 32 banks once), and [stage][32] scales, slot = the writing lane.
inline constexpr int kLogitsStages = 3;
inline constexpr int kLogitsKStageBytes = kLogitsTileTokens * kLogitsDim;
inline constexpr int kLogitsKBytes = kLogitsWarps * kLogitsStages * kLogitsKStageBytes;
inline constexpr int kLogitsKScaleBytes = kLogitsWarps * kLogitsStages * kLogitsTileTokens * 4;

// Dynamic shared memory of a CTA for groups of `group_rows` query rows: K stages, K scales,
// weights [rows][H], q [rows][H] × (128 fp8 codes, or 128 f16 on the f16 path).
DSA_HD constexpr int logits_smem_bytes(int heads, int group_rows, bool f16_q) {
  return kLogitsKBytes + kLogitsKScaleBytes + group_rows * heads * 4 + group_rows * heads * kLogitsDim * (f16_q ? 2 : 1);
}

__device__ __forceinline__ int k_smem_chunk(int row, int chunk) { return chunk ^ ((row & 1) << 2); }
// q of the group, fp8 path: [row][head][128 B], chunk j of head h at chunk j ^ 4·(h & 1), for the
// same reason.
__device__ __forceinline__ int q_smem_chunk(int head, int chunk) { return chunk ^ ((head & 1) << 2); }

// q of the group, f16 path: [row][head][lane c][4 pieces of 16 B]; piece j holds the B fragments
// (b0, b1) of k16 steps 2j and 2j+1 for lane c, i.e. the f16 of list_c bytes [8j, 8j + 8), one
// step per 8-byte half. Piece j is stored at j ^ (c / 2 + 2·(h & 1)) and step 2j + ss in half
// ss ^ ((h / 2) & 1), so the 16 lanes of an 8-byte read phase (heads h..h+3 × c = 0..3, one step)
// hit all 32 banks once.
__device__ __forceinline__ int q16_smem_piece(int head, int c, int piece) {
  return piece ^ ((c >> 1) | ((head & 1) << 1));
}
__device__ __forceinline__ int q16_smem_half(int head, int ss) { return ss ^ ((head >> 1) & 1); }

// Issues the copies of one 32-token tile into a stage: lane (g, c) copies chunks c and c+4 of its
// 4 tokens 16·tm + 8·half + g, and the scale of the token it will write (tm = c / 2, half = c % 2);
// tokens outside [lo, hi) are zero-filled and never read from global memory.
template <class Src>
__device__ __forceinline__ void issue_k_tile(const Src& src, const LogitsArgs& a, std::int64_t group, std::int64_t t0,
                                             std::int64_t lo, std::int64_t hi, int g, int c, std::uint8_t* stage,
                                             float* stage_scales) {
  const int lane = 4 * g + c;
#pragma unroll
  for (int tm = 0; tm < 2; ++tm) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = 16 * tm + 8 * half + g;
      const std::int64_t t = t0 + r;
      std::uint8_t* row = stage + r * kLogitsDim;
      const bool mine = tm == c / 2 && half == c % 2;
      if (t >= lo && t < hi) {
        std::int64_t tp;
        const std::uint8_t* pg = src.page(group, t, tp);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int chunk = c + 4 * j;
          const std::uint8_t* from = src.chunk(pg, tp, chunk);
          std::uint8_t* to = row + 16 * k_smem_chunk(r, chunk);
          if (a.k_aligned16) {
            logits_cp16(to, from);
          } else {  // pages are 4-byte aligned (SPEC §6.1)
#pragma unroll
            for (int w = 0; w < 4; ++w) logits_cp4(to + 4 * w, from + 4 * w);
          }
        }
        if (mine) logits_cp4(stage_scales + lane, src.scale(pg, tp));
      } else {
#pragma unroll
        for (int j = 0; j < 2; ++j)
          *reinterpret_cast<uint4*>(row + 16 * k_smem_chunk(r, c + 4 * j)) = make_uint4(0, 0, 0, 0);
        if (mine) stage_scales[lane] = 0.0f;
      }
    }
  }
}

template <class Src, int H, bool kHardwareMma>
__global__ void __launch_bounds__(kLogitsThreads, kLogitsMinCtasPerSm) mqa_logits_kernel(const LogitsArgs a, const Src src) {
  static_assert(H % 8 == 0 && H <= 64, "heads come in n8 tiles");
  constexpr int NT = H / 8;
  if (*a.status != 0) return;  // an input broke a device-checked rule: write nothing
  extern __shared__ __align__(16) std::uint8_t smem[];
  const int warp = static_cast<int>(threadIdx.x) / kMmaLanes;
  const int lane = static_cast<int>(threadIdx.x) % kMmaLanes;
  const int g = lane / 4, c = lane % 4;
  std::uint8_t* const k_s = smem + warp * kLogitsStages * kLogitsKStageBytes;
  float* const ks_s = reinterpret_cast<float*>(smem + kLogitsKBytes) + warp * kLogitsStages * kLogitsTileTokens;
  float* const w_s = reinterpret_cast<float*>(smem + kLogitsKBytes + kLogitsKScaleBytes);
  std::uint8_t* const q_s = smem + kLogitsKBytes + kLogitsKScaleBytes + a.group_rows * H * 4;
  constexpr bool kF16 = kHardwareMma && kMmaF16Available;
  const float kMasked = f32_from_bits(0xFF800000u);  // −inf

  for (std::int64_t unit = blockIdx.x; unit < a.units; unit += gridDim.x) {
    const std::int64_t group = unit / a.chunks;
    const std::int64_t row0 = group * a.group_rows;
    std::int64_t lo, hi;  // union of the group's visible ranges
    int nrows;
    group_span(src, a, group, lo, hi, nrows);
    const std::int64_t t_begin = (unit % a.chunks) * a.chunk_tokens;
    const std::int64_t t_end = t_begin + a.chunk_tokens < a.width ? t_begin + a.chunk_tokens : a.width;
    const std::int64_t ntiles = (t_end - t_begin + kLogitsTileTokens - 1) / kLogitsTileTokens;
    // Tiles [k_lo, k_hi) of the chunk meet [lo, hi) (uniform over the CTA; empty when none does).
    std::int64_t k_lo = 0, k_hi = 0;
    if (lo < hi && t_begin < hi && t_end > lo) {
      k_lo = lo > t_begin ? (lo - t_begin) / kLogitsTileTokens : 0;
      k_hi = (hi - t_begin + kLogitsTileTokens - 1) / kLogitsTileTokens;
      k_hi = k_hi < ntiles ? k_hi : ntiles;
    }

    if (k_lo < k_hi) {
      __syncthreads();  // the previous unit's reads of q_s / w_s are done
      if constexpr (kF16) {
#if !defined(DSA_GPU_BACKEND_HIP)
        // Piece (r, h, c, j): list_c bytes [8j, 8j + 8) = chunk (j < 2 ? c : c + 4), bytes 8·(j % 2).. .
        const int pieces = nrows * H * 16;
        for (int i = static_cast<int>(threadIdx.x); i < pieces; i += kLogitsThreads) {
          const int j = i % 4, qc = (i / 4) % 4, h = (i / 16) % H, r = i / (16 * H);
          const int chunk = j < 2 ? qc : qc + 4;
          const uint2 v = __ldg(reinterpret_cast<const uint2*>(a.q + ((row0 + r) * H + h) * kLogitsDim + 16 * chunk +
                                                               8 * (j % 2)));
          const uint2 step0 = make_uint2(e4m3x2_to_f16x2(v.x), e4m3x2_to_f16x2(v.x >> 16));  // (b0, b1) of 2j
          const uint2 step1 = make_uint2(e4m3x2_to_f16x2(v.y), e4m3x2_to_f16x2(v.y >> 16));  // of 2j + 1
          std::uint8_t* piece = q_s + ((r * H + h) * 4 + qc) * 64 + 16 * q16_smem_piece(h, qc, j);
          *reinterpret_cast<uint2*>(piece + 8 * q16_smem_half(h, 0)) = step0;
          *reinterpret_cast<uint2*>(piece + 8 * q16_smem_half(h, 1)) = step1;
        }
#endif
      } else {
        const int q_chunks = nrows * H * kLogitsChunks;
        for (int i = static_cast<int>(threadIdx.x); i < q_chunks; i += kLogitsThreads) {
          const int j = i % kLogitsChunks, h = (i / kLogitsChunks) % H, r = i / (kLogitsChunks * H);
          const uint4 v = __ldg(reinterpret_cast<const uint4*>(a.q + ((row0 + r) * H + h) * kLogitsDim) + j);
          *reinterpret_cast<uint4*>(q_s + (r * H + h) * kLogitsDim + 16 * q_smem_chunk(h, j)) = v;
        }
      }
      for (int i = static_cast<int>(threadIdx.x); i < nrows * H; i += kLogitsThreads) w_s[i] = a.weights[row0 * H + i];
      __syncthreads();
    }

    // Tiles of this warp outside [k_lo, k_hi): −inf only, 32 consecutive positions per row.
    for (std::int64_t k = warp; k < ntiles; k += kLogitsWarps) {
      if (k >= k_lo && k < k_hi) continue;
      const std::int64_t t = t_begin + k * kLogitsTileTokens + lane;
      if (t < t_end)
        for (int i = 0; i < nrows; ++i) a.logits[(row0 + i) * a.row_stride + t] = kMasked;
    }

    // This warp's tiles in [k_lo, k_hi): k_first, k_first + 4, …; kLogitsStages − 1 in flight
    // ahead of the one being multiplied.
    const std::int64_t k_first = k_lo + ((warp - k_lo) % kLogitsWarps + kLogitsWarps) % kLogitsWarps;
    const std::int64_t n_mine = k_first < k_hi ? (k_hi - k_first + kLogitsWarps - 1) / kLogitsWarps : 0;
    auto tile_start = [&](std::int64_t j) { return t_begin + (k_first + j * kLogitsWarps) * kLogitsTileTokens; };
#pragma unroll
    for (int j = 0; j < kLogitsStages - 1; ++j) {
      if (j < n_mine)
        issue_k_tile(src, a, group, tile_start(j), lo, hi, g, c, k_s + j * kLogitsKStageBytes,
                     ks_s + j * kLogitsTileTokens);
      logits_cp_commit();
    }
    for (std::int64_t j = 0; j < n_mine; ++j) {
      const std::int64_t ahead = j + kLogitsStages - 1;
      if (ahead < n_mine) {
        const int st = static_cast<int>(ahead % kLogitsStages);
        issue_k_tile(src, a, group, tile_start(ahead), lo, hi, g, c, k_s + st * kLogitsKStageBytes,
                     ks_s + st * kLogitsTileTokens);
      }
      logits_cp_commit();
      logits_cp_wait<kLogitsStages - 1>();  // tile j has landed
      const int st = static_cast<int>(j % kLogitsStages);
      const std::uint8_t* stage = k_s + st * kLogitsKStageBytes;
      // The lane's 16-byte chunk c + 4·jj of token 16·tm + 8·half + g (list_c words 4jj .. 4jj + 3).
      auto k_chunk = [&](int tm, int half, int jj) {
        const int r = 16 * tm + 8 * half + g;
        return *reinterpret_cast<const uint4*>(stage + r * kLogitsDim + 16 * k_smem_chunk(r, c + 4 * jj));
      };
      const float scale = ks_s[st * kLogitsTileTokens + lane];
      const std::int64_t t0 = tile_start(j);
      // The token this lane writes.
      const int tm_w = c / 2, half_w = c % 2;
      const std::int64_t t_w = t0 + 16 * tm_w + 8 * half_w + g;
      for (int i = 0; i < nrows; ++i) {
        // Per n8 tile of heads: its products, then its heads' terms into the running head sums
        // sum[tm][half] (heads in order nt·8 + 2c, nt·8 + 2c + 1), so only one tile's
        // accumulators are live.
        const float* wrow = w_s + i * H;
        float sum[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
        if constexpr (kF16) {
#if !defined(DSA_GPU_BACKEND_HIP)
          // k16 steps outer, head tiles inner: 2·NT independent accumulator chains per step (the
          // products of one step do not wait on each other). The list's two halves (jj) in a rolled
          // loop, its 4 steps unrolled: per half the K words come from the stage once, per step
          // each K word is converted once and each head's q fragment read once — and no more is
          // live than one half needs (unrolled whole, the compiler hoisted every step's loads and
          // spilled).
          float acc[2][NT][4];
#pragma unroll
          for (int tm = 0; tm < 2; ++tm)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
              for (int e = 0; e < 4; ++e) acc[tm][nt][e] = 0.0f;
          const std::uint8_t* qi = q_s + i * H * kLogitsDim * 2;
#pragma unroll 1
          for (int jj = 0; jj < 2; ++jj) {
            std::uint32_t kq[2][2][4];  // [tm][half][word]
#pragma unroll
            for (int tm = 0; tm < 2; ++tm)
#pragma unroll
              for (int half = 0; half < 2; ++half) {
                const uint4 v = k_chunk(tm, half, jj);
                kq[tm][half][0] = v.x, kq[tm][half][1] = v.y, kq[tm][half][2] = v.z, kq[tm][half][3] = v.w;
              }
#pragma unroll
            for (int w = 0; w < 4; ++w) {  // k16 step 4·jj + w: q piece 2·jj + w / 2, half w % 2
              std::uint32_t qb[NT][2];       // (b0, b1) of the step for head nt·8 + g
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) {
                const int h = nt * 8 + g;
                const uint2 v = *reinterpret_cast<const uint2*>(qi + (h * 4 + c) * 64 +
                                                                16 * q16_smem_piece(h, c, 2 * jj + w / 2) +
                                                                8 * q16_smem_half(h, w % 2));
                qb[nt][0] = v.x, qb[nt][1] = v.y;
              }
              std::uint32_t ka[2][4];
#pragma unroll
              for (int tm = 0; tm < 2; ++tm) {
                ka[tm][0] = e4m3x2_to_f16x2(kq[tm][0][w]);
                ka[tm][1] = e4m3x2_to_f16x2(kq[tm][1][w]);
                ka[tm][2] = e4m3x2_to_f16x2(kq[tm][0][w] >> 16);
                ka[tm][3] = e4m3x2_to_f16x2(kq[tm][1][w] >> 16);
              }
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) {
                const std::uint32_t b[2] = {qb[nt][0], qb[nt][1]};
#pragma unroll
                for (int tm = 0; tm < 2; ++tm) mma_f16_m16n8k16(acc[tm][nt], ka[tm], b);
              }
            }
          }
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            const float2 w = *reinterpret_cast<const float2*>(wrow + nt * 8 + 2 * c);
#pragma unroll
            for (int tm = 0; tm < 2; ++tm) {
#pragma unroll
              for (int half = 0; half < 2; ++half) {
                sum[tm][half] += mqa_formula::head_term<KScaleAt::after_head_sum>(acc[tm][nt][2 * half], w.x, 1.0f);
                sum[tm][half] += mqa_formula::head_term<KScaleAt::after_head_sum>(acc[tm][nt][2 * half + 1], w.y, 1.0f);
              }
            }
          }
#endif
        } else {
          // The emulated fp8 path: one n8 tile of heads at a time (only 8 accumulators live; a
          // rolled loop keeps the compiler from hoisting every tile's q loads).
#pragma unroll 2
          for (int nt = 0; nt < NT; ++nt) {
            const int h = nt * 8 + g;
            float acc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
            const std::uint8_t* qrow = q_s + i * H * kLogitsDim;
            const uint4 q0 = *reinterpret_cast<const uint4*>(qrow + h * kLogitsDim + 16 * q_smem_chunk(h, c));
            const uint4 q1 = *reinterpret_cast<const uint4*>(qrow + h * kLogitsDim + 16 * q_smem_chunk(h, c + 4));
            const std::uint32_t qw[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
            std::uint32_t kw[2][2][8];  // [tm][half][word]: list_c of token 16·tm + 8·half + g
#pragma unroll
            for (int tm = 0; tm < 2; ++tm)
#pragma unroll
              for (int half = 0; half < 2; ++half)
#pragma unroll
                for (int jj = 0; jj < 2; ++jj) {
                  const uint4 v = k_chunk(tm, half, jj);
                  kw[tm][half][4 * jj] = v.x, kw[tm][half][4 * jj + 1] = v.y, kw[tm][half][4 * jj + 2] = v.z,
                                    kw[tm][half][4 * jj + 3] = v.w;
                }
#pragma unroll
            for (int st = 0; st < 4; ++st) {
              const std::uint32_t b[2] = {qw[2 * st], qw[2 * st + 1]};
#pragma unroll
              for (int tm = 0; tm < 2; ++tm) {
                const std::uint32_t af[4] = {kw[tm][0][2 * st], kw[tm][1][2 * st], kw[tm][0][2 * st + 1],
                                             kw[tm][1][2 * st + 1]};
                mma_fp8_m16n8k32<kHardwareMma>(acc[tm], af, b, a.k_fp8, a.q_fp8);
              }
            }
            const float2 w = *reinterpret_cast<const float2*>(wrow + nt * 8 + 2 * c);
#pragma unroll
            for (int tm = 0; tm < 2; ++tm) {
#pragma unroll
              for (int half = 0; half < 2; ++half) {
                sum[tm][half] += mqa_formula::head_term<KScaleAt::after_head_sum>(acc[tm][2 * half], w.x, 1.0f);
                sum[tm][half] += mqa_formula::head_term<KScaleAt::after_head_sum>(acc[tm][2 * half + 1], w.y, 1.0f);
              }
            }
          }
        }
        // The quad's lanes hold the other heads of the same tokens.
#pragma unroll
        for (int tm = 0; tm < 2; ++tm) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            sum[tm][half] += shfl_xor_group32(sum[tm][half], 1);
            sum[tm][half] += shfl_xor_group32(sum[tm][half], 2);
          }
        }
        const float mine = tm_w == 0 ? (half_w == 0 ? sum[0][0] : sum[0][1]) : (half_w == 0 ? sum[1][0] : sum[1][1]);
        if (t_w < t_end) {
          const VisibleRange v = src.range(group, row0, i);
          a.logits[(row0 + i) * a.row_stride + t_w] =
              v.contains(t_w) ? mqa_formula::finish<KScaleAt::after_head_sum>(mine, scale) : kMasked;
        }
      }
    }
  }
}

}  // namespace dsa::gpu::detail

#include "mqa_logits_wgmma.cuh"

namespace dsa::gpu::detail {

// The three bodies of the logits kernel: fp8 MMA emulated in fp32 (e4m3fnuz, HIP), mma.sync f16
// (e4m3fn, sm_89+), wgmma fp8 (e4m3fn, sm_90a).
enum class LogitsPath : int { emulated, sync_f16, wgmma };

template <class Src, int H, LogitsPath kPath>
struct LogitsKernel {
  static constexpr auto kernel() {
    if constexpr (kPath == LogitsPath::wgmma) return mqa_logits_wgmma_kernel<Src, H>;
    else return mqa_logits_kernel<Src, H, kPath == LogitsPath::sync_f16>;
  }
  static constexpr int smem_bytes(int group_rows) {
    if constexpr (kPath == LogitsPath::wgmma) return wg_smem_bytes(H, group_rows);
    else return logits_smem_bytes(H, group_rows, kPath == LogitsPath::sync_f16 && kMmaF16Available);
  }
  static constexpr std::int64_t kTileTokens = kPath == LogitsPath::wgmma ? kWgTileTokens : kLogitsTileTokens;
};

// CTAs of one instance that fit on an SM for groups of `group_rows` rows, asked once per process
// (the first call or warm-up), which also raises the kernel's dynamic shared-memory limit.
template <class Src, int H, LogitsPath kPath>
int logits_kernel_occupancy(int group_rows) {
  using K = LogitsKernel<Src, H, kPath>;
  struct Table {
    int ctas[kLogitsMaxGroupRows + 1];
  };
  static const Table table = [] {
    const auto kernel = K::kernel();
    DSA_GPU_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       K::smem_bytes(kLogitsMaxGroupRows)));
    Table t{};
    for (int rows = 1; rows <= kLogitsMaxGroupRows; ++rows) {
      int n = 0;
      DSA_GPU_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, reinterpret_cast<const void*>(kernel), kLogitsThreads,
                                                                    K::smem_bytes(rows)));
      t.ctas[rows] = n < 1 ? 1 : n;
    }
    return t;
  }();
  return table.ctas[group_rows];
}

// Launch shape: chunks of 1024 down to 128 positions (see below); a grid of at most the resident
// CTAs, which loop over the units.
template <class Src, int H, LogitsPath kPath>
void launch_logits_kernel(LogitsArgs a, const Src& src, std::int64_t groups, Stream stream) {
  using K = LogitsKernel<Src, H, kPath>;
  if (groups == 0 || a.width == 0) return;
  int device = 0, sms = 0;
  DSA_GPU_CHECK(cudaGetDevice(&device));
  DSA_GPU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int rows = static_cast<int>(a.group_rows);
  const std::int64_t resident = static_cast<std::int64_t>(sms) * logits_kernel_occupancy<Src, H, kPath>(rows);
  constexpr std::int64_t kMinChunk = kLogitsWarps * kLogitsTileTokens;  // a multiple of every path's tile
  auto chunks_of = [&](std::int64_t ch) { return (a.width + ch - 1) / ch; };
  // The resident CTAs take the units in rounds, which are units / (rounds·resident) full on
  // average. Take the largest chunk whose rounds are ≥ 90 % full, else the fullest: smaller chunks
  // cost a q reload and a barrier per unit, larger ones leave SMs idle in the last round.
  std::int64_t chunk = kMinChunk;
  double best = 0.0;
  for (std::int64_t ch = 8 * kMinChunk; ch >= kMinChunk; ch /= 2) {
    const std::int64_t units = groups * chunks_of(ch);
    const std::int64_t rounds = (units + resident - 1) / resident;
    const double full = static_cast<double>(units) / static_cast<double>(rounds * resident);
    if (full > best + 1e-9) best = full, chunk = ch;
    if (full >= 0.9) {
      chunk = ch;
      break;
    }
  }
  a.chunk_tokens = chunk;
  a.chunks = chunks_of(chunk);
  a.units = groups * a.chunks;
  const std::int64_t grid = a.units < resident ? a.units : resident;
  K::kernel()<<<static_cast<unsigned>(grid), kLogitsThreads, K::smem_bytes(rows), stream>>>(a, src);
  DSA_GPU_CHECK_LAUNCH();
}

// The path for these formats: wgmma where it exists (DSA_INDEXER_MMA=sync picks mma.sync, for
// comparison), mma.sync f16 for e4m3fn elsewhere, the emulation otherwise.
inline LogitsPath choose_logits_path(Fp8Format q_fp8, Fp8Format k_fp8) {
  if (q_fp8 != Fp8Format::e4m3fn || k_fp8 != Fp8Format::e4m3fn) return LogitsPath::emulated;
  static const bool force_sync = [] {
    const char* e = std::getenv("DSA_INDEXER_MMA");
    return e != nullptr && std::string(e) == "sync";
  }();
  return kWgmmaAvailable && !force_sync ? LogitsPath::wgmma : LogitsPath::sync_f16;
}

template <class Src, int H>
void dispatch_logits_path(const LogitsArgs& a, const Src& src, std::int64_t groups, Stream stream) {
  switch (choose_logits_path(a.q_fp8, a.k_fp8)) {
    case LogitsPath::wgmma: return launch_logits_kernel<Src, H, LogitsPath::wgmma>(a, src, groups, stream);
    case LogitsPath::sync_f16: return launch_logits_kernel<Src, H, LogitsPath::sync_f16>(a, src, groups, stream);
    case LogitsPath::emulated: return launch_logits_kernel<Src, H, LogitsPath::emulated>(a, src, groups, stream);
  }
}

inline double logits_accumulator_unit_for(LogitsPath path) {
  // fp8 wgmma adds the products with about 14 significant bits (the limitation DeepGEMM promotes
  // around): measured on an H200 the worst error needs u ≈ 2^-20 (ratio 1.03 there); 2^-18 keeps
  // a 4× margin. f16 mma.sync and the emulation accumulate in fp32.
  return path == LogitsPath::wgmma ? 0x1p-18 : 0x1p-23;
}

// By head count and path.
template <class Src>
void dispatch_logits_kernel(const LogitsArgs& a, const Src& src, std::int64_t groups, std::int64_t heads,
                            Stream stream) {
  if (heads == 32) dispatch_logits_path<Src, 32>(a, src, groups, stream);
  else dispatch_logits_path<Src, 64>(a, src, groups, stream);
}

// Loads every instance for this K source (SPEC §7 warm-up).
template <class Src>
void warm_logits_kernels() {
  (void)logits_kernel_occupancy<Src, 32, LogitsPath::emulated>(1);
  (void)logits_kernel_occupancy<Src, 64, LogitsPath::emulated>(1);
  (void)logits_kernel_occupancy<Src, 32, LogitsPath::sync_f16>(1);
  (void)logits_kernel_occupancy<Src, 64, LogitsPath::sync_f16>(1);
  if constexpr (kWgmmaAvailable) {
    (void)logits_kernel_occupancy<Src, 32, LogitsPath::wgmma>(1);
    (void)logits_kernel_occupancy<Src, 64, LogitsPath::wgmma>(1);
  }
}

}  // namespace dsa::gpu::detail
