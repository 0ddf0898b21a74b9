// paged_mqa_logits on the GPU (SPEC §6.2): fp8 MQA logits of the lightning indexer over a paged
// index K cache, standard or preshuffle layout, with the DeepGEMM reader model (s_K after the head
// sum). Every position of [0, max_ctx) of every row is written — −inf where not visible — so the
// caller allocates the output without any fill.
//
// All pointers are device pointers; q, weights, context_lens and block_table are contiguous. The
// host validates what it can see (dsa::InvalidArgument naming the argument; a cache of another
// layout than `reader_layout` is dsa::LayoutMismatch naming both; nothing launched on error). The
// context lengths and the block table live on the device and are checked there by a first kernel
// before the logits kernel writes anything: a bad entry leaves the logits untouched and sets
// `*status` (check_paged_mqa_logits_status turns it into the errors dsa::validate would throw).
// Asynchronous on `stream`, allocates nothing, capturable in a CUDA graph.
//
// Kernel limits (InvalidArgument otherwise): head_dim = 128, num_heads ∈ {32, 64}, next_n ∈ [1, 4],
// k_scale_at = after_head_sum. fp8 formats: q and cache both e4m3fn run on the tensor cores — fp8
// wgmma on sm_90a, or (DSA_INDEXER_MMA=sync, other CUDA archs) codes converted exactly to f16 and
// mma.sync f16 with fp32 accumulation (sm_90 has no fp8 mma.sync of its own); e4m3fnuz in either
// (the HIP targets) runs the same kernel with the fp8 matrix product emulated in fp32.
// Arithmetic: products of fp8 codes are exact; accumulation as logits_accumulator_unit says; relu and the weighted head sum are fp32 in a fixed
// order that does not depend on the layout, page size or physical block numbers, so standard and
// preshuffle caches holding the same data give bit-identical logits, and reruns are bit-identical.
#pragma once

#include <cstdint>

#include "dsa/caches.hpp"
#include "dsa/gpu/stream.hpp"
#include "dsa/layouts.hpp"
#include "dsa/mqa_logit_formula.hpp"
#include "dsa/visible_range.hpp"

namespace dsa::gpu {

struct PagedMqaLogitsParams {
  std::int64_t batch = 0;      // B
  std::int64_t next_n = 1;     // N, in [1, 4]
  std::int64_t num_heads = 0;  // H ∈ {32, 64}
  std::int64_t head_dim = 0;   // D = 128 = cache.head_dim

  const std::uint8_t* q = nullptr;  // [B][N][H][D] fp8 codes
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  const float* weights = nullptr;   // [B·N][H] fp32, signed

  ContextLens context_lens_kind = ContextLens::per_sequence;
  const std::int32_t* context_lens = nullptr;  // [B] or [B][N], each ≥ 0 (checked on the device)

  const std::int32_t* block_table = nullptr;   // [B][max_blocks], all readable; only entries a visible position needs are used
  std::int64_t max_blocks = 0;

  dsa::IndexKGeometry cache;                    // layout tag, fp8 format, page size, head dim, stride
  const std::uint8_t* cache_bytes = nullptr;    // [cache.bytes()]
  IndexKLayout reader_layout = IndexKLayout::standard;  // the layout this call reads; cache.layout must match
  KScaleAt k_scale_at = KScaleAt::after_head_sum;

  std::int64_t max_ctx = 0;            // positions [0, max_ctx) of every row are written
  float* logits = nullptr;             // [B·N][logits_row_stride]; [max_ctx, row_stride) untouched
  std::int64_t logits_row_stride = 0;  // elements, ≥ max_ctx
  std::int32_t* status = nullptr;      // one int32: 0, or PagedMqaLogitsStatus bits

  std::int64_t rows() const { return batch * next_n; }
};

// Bits of *status after the launch: which device-side rule the inputs broke.
enum PagedMqaLogitsStatus : std::int32_t {
  kPagedLogitsOk = 0,
  kPagedLogitsBadContextLen = 1,  // a context_lens entry < 0
  kPagedLogitsTooFewBlocks = 2,   // a sequence sees more positions than max_blocks·page_tokens
  kPagedLogitsBadBlockTable = 4,  // a block-table entry a visible position needs is outside [0, num_blocks)
};

// The accumulator unit roundoff (KernelPrecision::u_acc) the kernel that a call with these fp8
// formats runs on this device is judged with (also mqa_logits'):
//   - wgmma (sm_90a, both e4m3fn; the default there): 2^-18. Hopper's fp8 tensor cores add the
//     products with about 14 significant bits; on an H200 the worst error over the suites needed
//     u ≈ 2^-20, and 2^-18 keeps a 4× margin while a kernel that drops one head of 64 is still
//     rejected (tests/gpu/paged_mqa_logits_test.cu prints both);
//   - mma.sync f16 (DSA_INDEXER_MMA=sync) and the emulated fp8 product: 2^-23 = 2·u_fp32, the
//     project's default — fp8 codes are exact in f16 and their products exact in fp32.
double logits_accumulator_unit(Fp8Format q_fp8, Fp8Format k_fp8);

// The kernel path a call with these parameters takes on this device: "tma-wgmma" (sm_90a, pages of
// 64k tokens with 16-byte aligned pages, both e4m3fn: a persistent kernel whose producer warp
// bulk-copies K tiles into a shared-memory ring; DSA_INDEXER_TMA=0 turns it off), "wgmma",
// "mma.sync-f16" or "emulated" (the per-thread cp.async kernels of mqa_logits).
const char* paged_mqa_logits_path(const PagedMqaLogitsParams& p);
// Whether this build has the streaming path (CUDA sm_90a) and it is not turned off.
bool paged_mqa_logits_tma_available();

void validate(const PagedMqaLogitsParams& p);

// Throws the dsa::InvalidArgument that dsa::validate would have thrown for these bits.
void check_paged_mqa_logits_status(std::int32_t status);

// Dispatches by p.reader_layout (after checking the cache carries that layout).
void paged_mqa_logits(const PagedMqaLogitsParams& p, Stream stream);

// The kernel compiled for layout L alone: refuses a cache or reader_layout of another layout with
// dsa::LayoutMismatch.
template <dsa::IndexKLayout L>
void paged_mqa_logits_as(const PagedMqaLogitsParams& p, Stream stream);
extern template void paged_mqa_logits_as<IndexKLayout::standard>(const PagedMqaLogitsParams&, Stream);
extern template void paged_mqa_logits_as<IndexKLayout::preshuffle>(const PagedMqaLogitsParams&, Stream);

// Loads every paged_mqa_logits kernel and sets its launch attributes, so that the first call
// afterwards costs what a steady-state call costs (SPEC §7). Idempotent; needs a device.
void paged_mqa_logits_warmup();

}  // namespace dsa::gpu
