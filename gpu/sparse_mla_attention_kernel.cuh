// The sparse MLA attention kernel (SPEC §4, §5): one template for the fused fp8 decode, the staged
// path's attention over the bf16 workspace and prefill; its K/V tile loader is a policy (paged fp8
// cache vs bf16 rows), so no attention arithmetic exists twice. Instantiated once per file in
// gpu/instances/sparse_mla_attention_*.cu.
//
// One CTA of 256 threads (8 mma warps) computes 64 query heads of one query row over one split
// (a contiguous chunk of the row's slot axis, primary slots then extra slots). For S = Q·Kᵀ warp w
// takes heads 16·(w % 4) … +15 and half w / 4 of the tile's keys; for O += P·V it takes heads
// 32·(w % 2) … +31 and quarter w / 2 of the 512 value dims (each V element is read from shared
// memory by two warps, not four). Every warp issues the same number of tensor-core MMAs
// (mma.sync m16n8k16, bf16 operands, fp32 accumulation) and S is computed once; the row
// statistics pass between the two layouts through shared memory. Online softmax in
// fp32 with exp2; P is rounded to bf16 for P·V (KernelPrecision{u_acc = 2·2^−24, u_p = 2^−8,
// u_out = 2^−8}); the normaliser sums the fp32 weights.
//
// Per CTA: the selected slots of its chunk are resolved first (SPEC §3, dsa::resolve_slot) into
// shared-memory descriptors, so the cache is read for valid slots only and the tile loop never
// waits on an index load; invalid slots and the slots past the chunk's end become zero K/V rows
// with −inf scores. Tiles of BN keys then pass through shared memory:
//   fp8 loader  — cp.async copies each selected token's bytes (a one-token page of its layout) to
//                 a staging area while the previous tile is computed, then all threads dequantize
//                 the staged tile into the bf16 K tile (reader model of SPEC §2.5);
//   bf16 loader — cp.async copies rows straight into one of two K tiles (double buffer).
// V is the first 512 dims of K for every layout (SPEC §2), so the K tile serves both products.
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>

#include "dsa/caches.hpp"
#include "dsa/layouts.hpp"
#include "dsa/mla_read.hpp"
#include "dsa/mla_slots.hpp"
#include "dsa/reader_model.hpp"
#include "dsa/gpu/sparse_mla.hpp"

namespace dsa::gpu::detail {

inline constexpr int kAttnHeads = 64;     // heads per CTA (SparseMlaConfig::heads_per_cta)
inline constexpr int kAttnWarps = 8;      // SparseMlaConfig::num_warps
inline constexpr int kAttnThreads = kAttnWarps * kMmaWarp;
inline constexpr int kAttnDv = 512;       // D_v of every layout
inline constexpr int kSmemLimit = 232448; // 227 KiB: the opt-in dynamic shared memory of sm_90

// One source of selected slots (the primary or the extra part; for prefill and the staged path a
// single BF16 "cache" of dense rows).
struct AttnSource {
  dsa::MlaCacheGeometry geo;
  const std::uint8_t* values = nullptr;
  const std::uint8_t* scales = nullptr;      // MODEL1_SPLIT only
  const std::int32_t* indices = nullptr;     // [rows][topk]
  std::int32_t topk = 0;
  const std::int32_t* topk_length = nullptr; // [rows / rows_per_batch], or null
  const std::int32_t* block_table = nullptr; // [batch][max_blocks], logical mode
  std::int64_t max_blocks = 0;
  bool aligned = false;  // every token's bytes may be copied in 16-byte (scales: 8-byte) pieces
};

struct AttnArgs {
  const std::uint16_t* q = nullptr;  // bf16 [rows][H][D_qk], 16-byte aligned
  std::int64_t rows = 0;
  std::int64_t rows_per_batch = 1;   // S_q for decode (lengths and block tables are per batch)
  std::int32_t H = 0;
  std::int32_t head_groups = 0;      // ⌈H / 64⌉
  dsa::IndexMode mode = dsa::IndexMode::physical;
  dsa::ReaderModel model;
  AttnSource src[2];
  std::int64_t total_slots = 0;      // src[0].topk + src[1].topk
  float sm_scale = 0.0f;             // effective (never 0)
  const float* sink = nullptr;       // [H] or null
  int num_splits = 1;
  // num_splits == 1: final outputs. lse and max_logits may be null.
  std::uint16_t* out = nullptr;      // bf16 [rows][H][512]
  float* lse = nullptr;              // [rows][H]
  float* max_logits = nullptr;       // [rows][H]
  // num_splits > 1: partials per SPEC §4, combined by sparse_mla_combine.
  float* part_o = nullptr;           // [S][rows][H][512], normalised
  float* part_lse = nullptr;         // [S][rows][H], natural, −inf for an empty chunk
  float* part_max = nullptr;         // [S][rows][H], max z of the chunk, −inf for an empty chunk
  // Nonzero *skip_if at launch: write nothing (an upstream device-side check failed; the DSA step
  // passes the indexer's status). Null: always run.
  const std::int32_t* skip_if = nullptr;
  // Benchmark ablation only (detail::set_sparse_mla_ablation; results are wrong when set): 1 skips the Q·Kᵀ MMAs, 2 the P·V MMAs, 4 the tile loads (copies and dequantization),
  // 8 the softmax between them. 0 in every real call.
  int ablate = 0;
};

// A resolved slot: block < 0 means invalid. t_src = token in page | source << 30.
struct SlotDesc {
  std::int32_t block;
  std::int32_t t_src;
};
inline constexpr std::int32_t kTokenMask = (1 << 30) - 1;

// Byte offset of bf16 element (row, col) of a shared-memory matrix with `row_elems` elements per
// row, 16-byte chunks XOR-swizzled so that the 8 rows an ldmatrix reads at one column hit 8
// distinct bank groups (rows of 72, 64 or 8 chunks: chunk ^ row % 8; rows of 4 chunks: the row
// pair shares 128 bytes, chunk ^ (row / 2) % 4).
template <int kRowElems>
DSA_HD constexpr int swz(int row, int col) {
  constexpr int cpr = kRowElems / 8;
  static_assert(cpr % 8 == 0 || cpr == 4, "rows of 4 or a multiple of 8 chunks");
  const int chunk = col / 8;
  const int phys = cpr % 8 == 0 ? (chunk ^ (row & 7)) : (chunk ^ ((row >> 1) & 3));
  return row * kRowElems * 2 + phys * 16 + (col % 8) * 2;
}

// Layout facts the loaders rely on, checked against layouts.hpp: a token's bytes are one
// contiguous run in its page; NoPE codes are consecutive bytes and RoPE/BF16 dims consecutive
// bf16 from their first dim.
static_assert(layout::V32::dim_offset(1, 0) == layout::V32::page_bytes(1));
static_assert(layout::V32::scale_offset(0, 3) + 4 <= layout::V32::token_bytes);
static_assert(layout::V32::dim_offset(0, 575) + 2 == layout::V32::token_bytes);
static_assert(layout::V32::dim_offset(0, 9) == layout::V32::dim_offset(0, 8) + 1);
static_assert(layout::V32::dim_offset(0, 521) == layout::V32::dim_offset(0, 520) + 2);
static_assert(layout::Model1::dim_offset(0, 511) + 2 == layout::Model1::value_row_bytes);
static_assert(layout::Model1::dim_offset(0, 9) == layout::Model1::dim_offset(0, 8) + 1);
static_assert(layout::Model1::dim_offset(0, 457) == layout::Model1::dim_offset(0, 456) + 2);
static_assert(layout::Model1Split::dim_offset(3, 5) == layout::Model1::dim_offset(3, 5));

// ----------------------------------------------------------------------------------------------
// Loader policies. Interface:
//   kKBuffers, kStageBytes, kLutBytes, kMaterialize
//   init(args, lut)                         — once per CTA, before the first barrier
//   prefetch(args, sm, desc, s0, n, buf)    — issue the copies of tile slots [s0, s0 + BN)
//   materialize(args, sm, desc, s0, n)      — stage → K tile (fp8 only)
// `n` is the number of slots of the current descriptor chunk; slots ≥ n are padding.

struct SmemPtrs {
  std::uint8_t* q;
  std::uint8_t* k;       // K tile 0; tile 1 (bf16 loader) follows at k + k_bytes
  int k_bytes;
  std::uint8_t* stage;
  std::uint8_t* p;
  float* red;   // [2][64]: row max / normaliser exchange between the key halves
  float* alpha; // [64]: the rescale factor of each head row in the current tile
  float* lut;   // [2][256]
  SlotDesc* desc;
};

__device__ __forceinline__ void zero16(std::uint8_t* dst) { *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0); }

// Copies `bytes` (16 or 8) from global to shared: cp.async when aligned, else byte by byte.
__device__ __forceinline__ void copy_piece(std::uint8_t* dst, const std::uint8_t* src, int bytes, bool aligned) {
  if (aligned) {
    if (bytes == 16) cp_async_16(dst, src);
    else cp_async_8(dst, src);
  } else {
    for (int i = 0; i < bytes; ++i) dst[i] = src[i];
  }
}

// for (i = q; i < n; i += step) body(i), with a compile-time trip count so that it unrolls.
template <int kN, int kStep, class F>
__device__ __forceinline__ void strided(int q, F&& body) {
#pragma unroll
  for (int k = 0; k < (kN + kStep - 1) / kStep; ++k)
    if (q + k * kStep < kN) body(q + k * kStep);
}

__device__ __forceinline__ bool slot_valid(const SlotDesc* desc, int s, int n) { return s < n && desc[s].block >= 0; }

// fp8 paged caches: V32 (D_qk 576) or MODEL1 / MODEL1_SPLIT (D_qk 512); primary and extra may
// differ in layout (MODEL1 vs MODEL1_SPLIT), fp8 format and page size.
template <int D, int BN>
struct Fp8Loader {
  static constexpr bool kV32 = D == layout::V32::dim_qk;
  static_assert(kV32 || D == layout::Model1::dim_qk);
  // The staged record of one token is a one-token page of the record layout: V32 for V32, MODEL1
  // for both MODEL1 forms (values, then the scale row at Model1::scale_offset(1, 0, 0)).
  static constexpr dsa::MlaLayout kRecordLayout = kV32 ? dsa::MlaLayout::V32 : dsa::MlaLayout::MODEL1;
  static constexpr int kValueBytes = kV32 ? layout::V32::token_bytes : layout::Model1::value_row_bytes;
  static constexpr int kScaleOffset = kV32 ? 0 : static_cast<int>(layout::Model1::scale_offset(1, 0, 0));
  static constexpr int kRecordBytes = kV32 ? kValueBytes : static_cast<int>(layout::round_up(kScaleOffset + 8, 16));
  static_assert(kValueBytes % 16 == 0 && kRecordBytes % 16 == 0 && kScaleOffset % 8 == 0);
  static constexpr int kPieces = kValueBytes / 16 + (kV32 ? 0 : 1);  // 16-byte pieces + the 8-byte scale row
  static constexpr int kNope = kV32 ? layout::V32::nope_dims : layout::Model1::nope_dims;
  static constexpr int kTile = kV32 ? layout::V32::tile_dims : layout::Model1::tile_dims;
  static constexpr int kKBuffers = 1;
  static constexpr int kStageBytes = BN * kRecordBytes;
  static constexpr int kLutBytes = 2 * 256 * 4;
  static constexpr bool kMaterialize = true;

  __device__ static void init(const AttnArgs& a, float* lut) {
    // fp8 code → fp32 of each source's format: the reference decoder, tabulated.
    for (int i = threadIdx.x; i < 512; i += kAttnThreads) lut[i] = dsa::fp8_to_f32(static_cast<std::uint8_t>(i & 255), a.src[i >> 8].geo.fp8);
  }

  // Work split of a tile: kTpk threads per key, each taking every kTpk-th piece / chunk of its
  // key, so the descriptor, the page and the model branches are resolved once per key.
  static constexpr int kTpk = kAttnThreads / BN;
  static_assert(kAttnThreads % BN == 0);

  __device__ static void prefetch(const AttnArgs& a, const SmemPtrs& sm, const SlotDesc* desc, int s0, int n, int) {
    const int key = threadIdx.x / kTpk, q = threadIdx.x % kTpk;
    if (!slot_valid(desc, s0 + key, n)) return;  // materialize writes its zeros
    const SlotDesc d = desc[s0 + key];
    const AttnSource& src = a.src[d.t_src >> 30];
    const std::int64_t t = d.t_src & kTokenMask;
    const dsa::MlaPageRef pg = dsa::mla_page_ref(src.geo, src.values, src.scales, d.block);
    std::uint8_t* rec = sm.stage + key * kRecordBytes;
    const std::uint8_t* row = pg.values + (kV32 ? layout::V32::dim_offset(t, 0) : layout::Model1::dim_offset(t, 0));
    const bool aligned = src.aligned;
    strided<kValueBytes / 16, kTpk>(q, [&](int piece) { copy_piece(rec + piece * 16, row + piece * 16, 16, aligned); });
    if (!kV32 && q == kTpk - 1) {  // MODEL1 scale row (7 ue8m0 + pad)
      const std::uint8_t* sc = src.geo.layout == dsa::MlaLayout::MODEL1_SPLIT
                                   ? pg.scales + layout::Model1Split::scale_offset(t, 0)
                                   : pg.values + layout::Model1::scale_offset(pg.page_tokens, t, 0);
      copy_piece(rec + kScaleOffset, sc, 8, aligned);
    }
  }

  __device__ static float record_scale(const std::uint8_t* rec, int k) {
    if constexpr (kV32) return *reinterpret_cast<const float*>(rec + layout::V32::scale_offset(0, k));
    else return dsa::ue8m0_to_f32(rec[layout::Model1::scale_offset(1, 0, k)]);
  }

  // Dequantizes the staged tile into K: for each 8-dim chunk, the operands of dsa::read_mla_dims
  // (code × effective scale at the product precision, then bf16 RNE; RoPE bf16 copied). Codes are
  // decoded by the hardware converter for e4m3fn and through the table of dsa::fp8_to_f32
  // otherwise; both give the reference's values.
  template <bool kProductBf16>
  __device__ static void dequant_key(const AttnArgs& a, const SmemPtrs& sm, int key, int q, int src) {
    constexpr int cpr = D / 8;
    constexpr int nope_chunks = kNope / 8;
    static_assert(nope_chunks % kTpk == 0, "a thread's chunks are NoPE first, then RoPE");
    constexpr int kScales = kV32 ? layout::V32::num_scales : layout::Model1::num_scales;
    const std::uint8_t* rec = sm.stage + key * kRecordBytes;
    float sc[kScales];
#pragma unroll
    for (int k = 0; k < kScales; ++k) sc[k] = dsa::effective_scale(record_scale(rec, k), a.model.scale);
    const bool hw = a.src[src].geo.fp8 == dsa::Fp8Format::e4m3fn;
    const float* lut = sm.lut + 256 * src;
#pragma unroll
    for (int i = 0; i < nope_chunks / kTpk; ++i) {
      const int c = q + i * kTpk;
      const uint2 codes = *reinterpret_cast<const uint2*>(rec + 8 * c);  // dim_offset(0, d) = d (asserted above)
      // The chunk's scale tile, without a runtime index into sc[].
      float s = sc[0];
#pragma unroll
      for (int k = 1; k < kScales; ++k)
        if (8 * c >= k * kTile) s = sc[k];
      float v[8];
      if (hw) {
        e4m3fn_x2_to_float2(static_cast<std::uint16_t>(codes.x & 0xFFFFu), v[0], v[1]);
        e4m3fn_x2_to_float2(static_cast<std::uint16_t>(codes.x >> 16), v[2], v[3]);
        e4m3fn_x2_to_float2(static_cast<std::uint16_t>(codes.y & 0xFFFFu), v[4], v[5]);
        e4m3fn_x2_to_float2(static_cast<std::uint16_t>(codes.y >> 16), v[6], v[7]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = lut[((e < 4 ? codes.x : codes.y) >> (8 * (e % 4))) & 0xFFu];
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        v[e] *= s;
        if constexpr (kProductBf16) v[e] = dsa::round_to_bf16(v[e]);
      }
      uint4 out;
      out.x = pack_bf16x2_rn(v[0], v[1]);
      out.y = pack_bf16x2_rn(v[2], v[3]);
      out.z = pack_bf16x2_rn(v[4], v[5]);
      out.w = pack_bf16x2_rn(v[6], v[7]);
      *reinterpret_cast<uint4*>(sm.k + swz<D>(key, 8 * c)) = out;
    }
    strided<cpr - nope_chunks, kTpk>(q, [&](int r) {  // RoPE chunks
      const int c = nope_chunks + r;
      const std::int64_t off = kV32 ? layout::V32::dim_offset(0, 8 * c) : layout::Model1::dim_offset(0, 8 * c);
      *reinterpret_cast<uint4*>(sm.k + swz<D>(key, 8 * c)) = *reinterpret_cast<const uint4*>(rec + off);
    });
  }

  __device__ static void materialize(const AttnArgs& a, const SmemPtrs& sm, const SlotDesc* desc, int s0, int n) {
    const int key = threadIdx.x / kTpk, q = threadIdx.x % kTpk;
    if (!slot_valid(desc, s0 + key, n)) {
      strided<D / 8, kTpk>(q, [&](int c) { zero16(sm.k + swz<D>(key, 8 * c)); });
      return;
    }
    const int src = desc[s0 + key].t_src >> 30;
    if (a.model.product == dsa::ProductAs::bf16) dequant_key<true>(a, sm, key, q, src);
    else dequant_key<false>(a, sm, key, q, src);
  }
};
static_assert(layout::Model1::dim_offset(0, 0) == 0 && layout::V32::dim_offset(0, 0) == 0);

// bf16 rows (BF16 caches of D_qk 576 or 512: the staged workspace, a dense prefill kv, or a
// paged BF16 cache), copied straight into the K tile; two K tiles alternate.
template <int D, int BN>
struct Bf16Loader {
  static constexpr int kKBuffers = 2;
  static constexpr int kStageBytes = 0;
  static constexpr int kLutBytes = 0;
  static constexpr bool kMaterialize = false;

  __device__ static void init(const AttnArgs&, float*) {}

  static constexpr int kTpk = kAttnThreads / BN;  // threads per key (see Fp8Loader)

  __device__ static void prefetch(const AttnArgs& a, const SmemPtrs& sm, const SlotDesc* desc, int s0, int n, int buf) {
    const int key = threadIdx.x / kTpk, q = threadIdx.x % kTpk;
    std::uint8_t* dst = sm.k + buf * sm.k_bytes;
    if (!slot_valid(desc, s0 + key, n)) {
      strided<D / 8, kTpk>(q, [&](int c) { zero16(dst + swz<D>(key, 8 * c)); });
      return;
    }
    const SlotDesc d = desc[s0 + key];
    const AttnSource& src = a.src[d.t_src >> 30];
    const dsa::MlaPageRef pg = dsa::mla_page_ref(src.geo, src.values, src.scales, d.block);
    const std::uint8_t* row = pg.values + layout::Bf16::dim_offset(d.t_src & kTokenMask, 0, D);
    const bool aligned = src.aligned;
    strided<D / 8, kTpk>(q, [&](int c) { copy_piece(dst + swz<D>(key, 8 * c), row + 16 * c, 16, aligned); });
  }
  __device__ static void materialize(const AttnArgs&, const SmemPtrs&, const SlotDesc*, int, int) {}
};

// ----------------------------------------------------------------------------------------------
// Shared-memory plan of one instantiation.
template <int D, int BN, class Loader>
struct AttnSmem {
  static constexpr int kQ = 0;
  static constexpr int kK = kQ + kAttnHeads * D * 2;
  static constexpr int kKBytes = BN * D * 2;
  static constexpr int kStage = kK + Loader::kKBuffers * kKBytes;
  static constexpr int kP = kStage + Loader::kStageBytes;
  static constexpr int kRed = kP + kAttnHeads * BN * 2;
  static constexpr int kLut = kRed + 3 * kAttnHeads * 4;
  static constexpr int kDesc = kLut + Loader::kLutBytes;
  // Descriptor capacity: what is left, in whole tiles, at most 4096 slots.
  static constexpr int kDescCap = ((kSmemLimit - kDesc) / 8 / BN * BN) < 4096 ? ((kSmemLimit - kDesc) / 8 / BN * BN) : 4096;
  static constexpr int kBytes = kDesc + kDescCap * 8;
  static_assert(kDescCap >= 4 * BN, "at least four tiles of descriptors");
  static_assert(kBytes <= kSmemLimit);
};

// ----------------------------------------------------------------------------------------------
template <int D, int BN, class Loader>
__global__ void __launch_bounds__(kAttnThreads, 1) sparse_mla_attention_kernel(const AttnArgs a) {
  using Smem = AttnSmem<D, BN, Loader>;
  static_assert(D % 16 == 0 && (BN == 32 || BN == 64));
  if (a.skip_if != nullptr && *a.skip_if != 0) return;  // uniform over the grid
  constexpr int kHalfKeys = BN / 2;
  constexpr int kSTiles = kHalfKeys / 8;      // n-tiles of S per warp
  constexpr int kOTiles = kAttnDv / 4 / 8;    // n-tiles of O per warp and head tile (128 dims)
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr float kLn2 = 0.6931471805599453f;
  constexpr float kNegInf = -INFINITY;

  extern __shared__ __align__(16) std::uint8_t smem_raw[];
  SmemPtrs sm;
  sm.q = smem_raw + Smem::kQ;
  sm.k = smem_raw + Smem::kK;
  sm.k_bytes = Smem::kKBytes;
  sm.stage = smem_raw + Smem::kStage;
  sm.p = smem_raw + Smem::kP;
  sm.red = reinterpret_cast<float*>(smem_raw + Smem::kRed);
  sm.alpha = sm.red + 2 * kAttnHeads;
  sm.lut = reinterpret_cast<float*>(smem_raw + Smem::kLut);
  sm.desc = reinterpret_cast<SlotDesc*>(smem_raw + Smem::kDesc);

  const int tid = threadIdx.x, lane = tid % kMmaWarp, warp = tid / kMmaWarp;
  const int hq = warp & 3, half = warp >> 2, g = lane >> 2, c = lane & 3;  // S layout
  const int ph = warp & 1, dq = warp >> 1;                                  // P·V layout

  const std::int64_t bid = blockIdx.x;
  const int hg = static_cast<int>(bid % a.head_groups);
  const int split = static_cast<int>((bid / a.head_groups) % a.num_splits);
  const std::int64_t r = bid / a.head_groups / a.num_splits;
  const std::int64_t batch = r / a.rows_per_batch;
  const int h0 = hg * kAttnHeads;

  Loader::init(a, sm.lut);

  // Q tile: heads h0 … h0 + 63 of row r (zeros past H).
  {
    constexpr int cpr = D / 8;
    for (int item = tid; item < kAttnHeads * cpr; item += kAttnThreads) {
      const int h = item / cpr, ch = item % cpr;
      std::uint8_t* dst = sm.q + swz<D>(h, ch * 8);
      if (h0 + h < a.H) cp_async_16(dst, a.q + ((r * a.H + h0 + h) * D + ch * 8));
      else zero16(dst);
    }
    cp_async_commit();
  }

  const dsa::SlotRange range = dsa::split_range(a.total_slots, a.num_splits, split);
  const float scale_log2 = a.sm_scale * kLog2e;

  float o[2][kOTiles][4];  // heads 32·ph + 16·mt + (g, g + 8), dims 128·dq + 8·j + (2c, 2c + 1)
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int j = 0; j < kOTiles; ++j) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.0f;
  float m_run[2] = {kNegInf, kNegInf};  // running max of the scaled scores (log2 units), rows g, g + 8
  float l_run[2] = {0.0f, 0.0f};        // this thread's part of the normaliser

  // Q rows of this warp, K rows of this thread's ldmatrix lane (see port.hpp for the addressing).
  const int a_row = hq * 16 + (lane % 8) + 8 * ((lane / 8) % 2);
  const int a_col = 8 * (lane / 16);
  const int bk_row = (lane % 8) + 8 * (lane / 16);
  const int bk_col = 8 * ((lane / 8) % 2);

  for (std::int64_t cb = range.begin; cb < range.end; cb += Smem::kDescCap) {
    const int n = static_cast<int>(range.end - cb < Smem::kDescCap ? range.end - cb : Smem::kDescCap);
    __syncthreads();  // the previous chunk's tiles are done with the descriptors
    for (int i = tid; i < n; i += kAttnThreads) {
      const std::int64_t slot = cb + i;
      const int s = slot < a.src[0].topk ? 0 : 1;
      const AttnSource& src = a.src[s];
      const std::int64_t j = s == 0 ? slot : slot - a.src[0].topk;
      SlotDesc d{-1, 0};
      if (j < dsa::eligible_slots(src.topk, src.topk_length, batch)) {
        const std::int32_t* bt = a.mode == dsa::IndexMode::logical ? src.block_table + batch * src.max_blocks : nullptr;
        const dsa::MlaTokenRef tok = dsa::resolve_slot(a.mode, src.indices[r * src.topk + j], bt, src.max_blocks,
                                                       src.geo.num_blocks, src.geo.page_tokens);
        if (tok.valid()) d = {static_cast<std::int32_t>(tok.block), tok.t | (s << 30)};
      }
      sm.desc[i] = d;
    }
    __syncthreads();

    const int num_tiles = (n + BN - 1) / BN;
    if (!(a.ablate & 4)) Loader::prefetch(a, sm, sm.desc, 0, n, 0);
    cp_async_commit();
    for (int tile = 0; tile < num_tiles; ++tile) {
      const int s0 = tile * BN;
      const int buf = Loader::kKBuffers > 1 ? (tile & 1) : 0;
      cp_async_wait_all();
      __syncthreads();  // tile `tile` (and Q) landed; every warp is done with the previous tile
      if constexpr (Loader::kMaterialize) {
        if (!(a.ablate & 4)) Loader::materialize(a, sm, sm.desc, s0, n);
        __syncthreads();
      }
      if (tile + 1 < num_tiles && !(a.ablate & 4)) Loader::prefetch(a, sm, sm.desc, s0 + BN, n, buf ^ (Loader::kKBuffers > 1 ? 1 : 0));
      cp_async_commit();
      const std::uint8_t* kt = sm.k + buf * Smem::kKBytes;

      // S = Q·Kᵀ over this warp's 16 heads × half of the keys.
      float s[kSTiles][4];
#pragma unroll
      for (int j = 0; j < kSTiles; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
      if (!(a.ablate & 1))
#pragma unroll 4
      for (int ks = 0; ks < D / 16; ++ks) {
        std::uint32_t af[4];
        ldmatrix_x4(af, sm.q + swz<D>(a_row, ks * 16 + a_col));
#pragma unroll
        for (int np = 0; np < kSTiles / 2; ++np) {
          std::uint32_t bf[4];
          ldmatrix_x4(bf, kt + swz<D>(half * kHalfKeys + np * 16 + bk_row, ks * 16 + bk_col));
          mma_bf16_16816(s[2 * np], af, bf[0], bf[1]);
          mma_bf16_16816(s[2 * np + 1], af, bf[2], bf[3]);
        }
      }

      // Scale, mask, tile row max (rows g and g + 8 of the warp's heads).
      float m_tile[2] = {kNegInf, kNegInf};
#pragma unroll
      for (int j = 0; j < kSTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = half * kHalfKeys + j * 8 + 2 * c + (e & 1);
          s[j][e] = slot_valid(sm.desc, s0 + key, n) ? s[j][e] * scale_log2 : kNegInf;
          m_tile[e >> 1] = fmaxf(m_tile[e >> 1], s[j][e]);
        }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        m_tile[i] = fmaxf(m_tile[i], shfl_xor_group(m_tile[i], 1, 4));
        m_tile[i] = fmaxf(m_tile[i], shfl_xor_group(m_tile[i], 2, 4));
      }
      if (c == 0) {
        sm.red[half * kAttnHeads + hq * 16 + g] = m_tile[0];
        sm.red[half * kAttnHeads + hq * 16 + g + 8] = m_tile[1];
      }
      __syncthreads();
      float m_use[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const float other = sm.red[(half ^ 1) * kAttnHeads + hq * 16 + g + 8 * i];
        const float m_new = fmaxf(m_run[i], fmaxf(m_tile[i], other));
        m_use[i] = m_new == kNegInf ? 0.0f : m_new;  // no valid key yet: every weight is 0
        const float alpha = fast_exp2(m_run[i] - m_use[i]);
        m_run[i] = m_new;
        l_run[i] *= alpha;
        if (half == 0 && c == 0) sm.alpha[hq * 16 + g + 8 * i] = alpha;
      }
      // P = exp2(S − m), rounded to bf16 into shared memory; l sums the fp32 weights.
      if (!(a.ablate & 8))
#pragma unroll
      for (int j = 0; j < kSTiles; ++j) {
        float p[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          p[e] = fast_exp2(s[j][e] - m_use[e >> 1]);
          l_run[e >> 1] += p[e];
        }
        const int col = half * kHalfKeys + j * 8 + 2 * c;
        *reinterpret_cast<std::uint32_t*>(sm.p + swz<BN>(hq * 16 + g, col)) = pack_bf16x2_rn(p[0], p[1]);
        *reinterpret_cast<std::uint32_t*>(sm.p + swz<BN>(hq * 16 + g + 8, col)) = pack_bf16x2_rn(p[2], p[3]);
      }
      __syncthreads();

      // O[heads of ph, dims of dq] = alpha·O + P·V over all BN keys.
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const float a0 = sm.alpha[ph * 32 + mt * 16 + g], a1 = sm.alpha[ph * 32 + mt * 16 + g + 8];
#pragma unroll
        for (int j = 0; j < kOTiles; ++j) {
          o[mt][j][0] *= a0;
          o[mt][j][1] *= a0;
          o[mt][j][2] *= a1;
          o[mt][j][3] *= a1;
        }
      }
      if (!(a.ablate & 2))
#pragma unroll
      for (int kst = 0; kst < BN / 16; ++kst) {
        std::uint32_t af[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) ldmatrix_x4(af[mt], sm.p + swz<BN>(ph * 32 + mt * 16 + (a_row % 16), kst * 16 + a_col));
#pragma unroll
        for (int dp = 0; dp < kOTiles / 2; ++dp) {
          std::uint32_t bf[4];
          ldmatrix_x4_trans(bf, kt + swz<D>(kst * 16 + (lane % 8) + 8 * ((lane / 8) % 2),
                                             dq * (kAttnDv / 4) + dp * 16 + 8 * (lane / 16)));
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            mma_bf16_16816(o[mt][2 * dp], af[mt], bf[0], bf[1]);
            mma_bf16_16816(o[mt][2 * dp + 1], af[mt], bf[2], bf[3]);
          }
        }
      }
    }
  }
  cp_async_wait_all();  // an empty chunk issued only the Q copies

  // Row statistics (S layout): the normaliser from the quad's lanes and the other key half; lse,
  // max z, and each row's output multiplier, handed to the P·V layout through shared memory.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l_run[i] += shfl_xor_group(l_run[i], 1, 4);
    l_run[i] += shfl_xor_group(l_run[i], 2, 4);
  }
  __syncthreads();
  if (c == 0) {
    sm.red[half * kAttnHeads + hq * 16 + g] = l_run[0];
    sm.red[half * kAttnHeads + hq * 16 + g + 8] = l_run[1];
  }
  __syncthreads();
  float row_mul[2];  // out = o · row_mul; 0 writes exact zeros (empty row, or sink +inf)
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int hl = hq * 16 + g + 8 * i;
    const int h = h0 + hl;
    const float l = l_run[i] + sm.red[(half ^ 1) * kAttnHeads + hl];
    const bool empty = m_run[i] == kNegInf;
    const float lse = empty ? kNegInf : m_run[i] * kLn2 + logf(l);  // natural, no sink
    const float max_z = empty ? kNegInf : m_run[i] * kLn2;
    const float inv_l = empty ? 0.0f : 1.0f / l;
    row_mul[i] = inv_l;
    if (a.num_splits == 1) {
      float f = 1.0f;  // sink factor 1 / (1 + exp(sink − lse)); −inf sink: exactly 1
      if (a.sink != nullptr && !empty && h < a.H) f = 1.0f / (1.0f + expf(a.sink[h] - lse));
      row_mul[i] = empty || f == 0.0f ? 0.0f : inv_l * f;
    }
    if (h < a.H && half == 0 && c == 0) {
      const std::int64_t rh = r * a.H + h;
      if (a.num_splits == 1) {
        if (a.lse != nullptr) a.lse[rh] = empty ? INFINITY : lse;
        if (a.max_logits != nullptr) a.max_logits[rh] = max_z;
      } else {
        const std::int64_t prh = split * a.rows * a.H + rh;
        a.part_lse[prh] = lse;
        a.part_max[prh] = max_z;
      }
    }
  }
  __syncthreads();  // every warp has read the normalisers
  if (half == 0 && c == 0) {
    sm.red[hq * 16 + g] = row_mul[0];
    sm.red[hq * 16 + g + 8] = row_mul[1];
  }
  __syncthreads();

  // Outputs (P·V layout).
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int hl = ph * 32 + mt * 16 + g + 8 * i;
      const int h = h0 + hl;
      if (h >= a.H) continue;
      const float mul = sm.red[hl];
      const std::int64_t rh = r * a.H + h;
      if (a.num_splits == 1) {
        std::uint16_t* dst = a.out + rh * kAttnDv + dq * (kAttnDv / 4) + 2 * c;
#pragma unroll
        for (int j = 0; j < kOTiles; ++j) {
          const float v0 = mul == 0.0f ? 0.0f : o[mt][j][2 * i] * mul;
          const float v1 = mul == 0.0f ? 0.0f : o[mt][j][2 * i + 1] * mul;
          *reinterpret_cast<std::uint32_t*>(dst + j * 8) =
              float_to_bf16(v0) | (static_cast<std::uint32_t>(float_to_bf16(v1)) << 16);
        }
      } else {
        const std::int64_t prh = split * a.rows * a.H + rh;
        float* dst = a.part_o + prh * kAttnDv + dq * (kAttnDv / 4) + 2 * c;
#pragma unroll
        for (int j = 0; j < kOTiles; ++j)
          *reinterpret_cast<float2*>(dst + j * 8) = make_float2(o[mt][j][2 * i] * mul, o[mt][j][2 * i + 1] * mul);
      }
    }
}

template <int D, int BN, class Loader>
int attention_smem_bytes() {
  return AttnSmem<D, BN, Loader>::kBytes;
}

// Launch: grid = rows × splits × head groups (head groups fastest, so the CTAs that read the same
// tokens run side by side). The shared-memory opt-in is set once per instantiation.
template <int D, int BN, class Loader>
void launch_attention(const AttnArgs& a, Stream stream) {
  const int bytes = AttnSmem<D, BN, Loader>::kBytes;
  static std::once_flag once;
  std::call_once(once, [&] {
    DSA_GPU_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(&sparse_mla_attention_kernel<D, BN, Loader>),
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  });
  const std::int64_t grid = a.rows * a.num_splits * a.head_groups;
  if (grid == 0) return;
  sparse_mla_attention_kernel<D, BN, Loader><<<static_cast<unsigned>(grid), kAttnThreads, bytes, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
}

}  // namespace dsa::gpu::detail

namespace dsa::gpu::detail {

// One explicit instantiation per file under gpu/instances/ (sparse_mla_attention_<loader>_d<D>_bn<BN>.cu);
// every other translation unit sees these declarations and instantiates nothing.
#define DSA_INSTANTIATE_SPARSE_MLA_ATTENTION(D, BN, LOADER) \
  template void launch_attention<D, BN, LOADER<D, BN>>(const AttnArgs&, Stream);

#define DSA_DECLARE_SPARSE_MLA_ATTENTION(D, BN, LOADER) \
  extern template void launch_attention<D, BN, LOADER<D, BN>>(const AttnArgs&, Stream);
DSA_DECLARE_SPARSE_MLA_ATTENTION(576, 32, Fp8Loader)
DSA_DECLARE_SPARSE_MLA_ATTENTION(576, 64, Fp8Loader)
DSA_DECLARE_SPARSE_MLA_ATTENTION(512, 32, Fp8Loader)
DSA_DECLARE_SPARSE_MLA_ATTENTION(512, 64, Fp8Loader)
DSA_DECLARE_SPARSE_MLA_ATTENTION(576, 32, Bf16Loader)
DSA_DECLARE_SPARSE_MLA_ATTENTION(576, 64, Bf16Loader)
DSA_DECLARE_SPARSE_MLA_ATTENTION(512, 32, Bf16Loader)
DSA_DECLARE_SPARSE_MLA_ATTENTION(512, 64, Bf16Loader)
#undef DSA_DECLARE_SPARSE_MLA_ATTENTION

}  // namespace dsa::gpu::detail
