// The staged gather kernel, templated on the cache layout; instantiated once per layout in
// gpu/instances/. The per-item body is host/device, so a test can run it on the CPU.
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <algorithm>
#include <cstdint>

#include "dsa/caches.hpp"
#include "dsa/gpu/sparse_mla_gather.hpp"
#include "dsa/mla_read.hpp"
#include "dsa/mla_slots.hpp"

namespace dsa::gpu::detail {

// Dims per work item: one 16-byte store of 8 bf16. Scale tiles (128, 64) and the NoPE/RoPE
// boundary (512, 448) are multiples of 8, so an item never straddles a tile.
inline constexpr int kGatherChunk = 8;
static_assert(layout::V32::tile_dims % kGatherChunk == 0 && layout::V32::nope_dims % kGatherChunk == 0);
static_assert(layout::Model1::tile_dims % kGatherChunk == 0 && layout::Model1::nope_dims % kGatherChunk == 0);

// Plain kernel arguments for one part (primary or extra).
struct GatherArgs {
  MlaGatherSource src;
  std::int64_t rows = 0;     // T
  std::int64_t seq_q = 1;    // S_q
  std::int32_t slots = 0;    // K: slots per workspace row (both parts)
  std::int32_t slot0 = 0;    // first slot of this part (0 or primary.topk)
  std::int32_t dim_qk = 0;
  dsa::IndexMode mode = dsa::IndexMode::physical;
  dsa::ReaderModel model;
  std::uint16_t* workspace = nullptr;
  std::int32_t* rebuilt_indices = nullptr;
};

DSA_HD inline std::int64_t gather_items(const GatherArgs& a) {
  return a.rows * a.src.topk * (a.dim_qk / kGatherChunk);
}

DSA_HD inline void store_bf16x8(std::uint16_t* dst, const std::uint16_t (&c)[kGatherChunk]) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  uint4 w;  // 16-byte aligned: validated base, row and chunk strides are multiples of 16 B
  w.x = c[0] | (static_cast<std::uint32_t>(c[1]) << 16);
  w.y = c[2] | (static_cast<std::uint32_t>(c[3]) << 16);
  w.z = c[4] | (static_cast<std::uint32_t>(c[5]) << 16);
  w.w = c[6] | (static_cast<std::uint32_t>(c[7]) << 16);
  *reinterpret_cast<uint4*>(dst) = w;
#else
  for (int i = 0; i < kGatherChunk; ++i) dst[i] = c[i];
#endif
}

// Work item `item` = (row r, slot j of this part, chunk c of the row's dims), c fastest, so
// consecutive threads write consecutive 16-byte pieces of one workspace row.
template <dsa::MlaLayout L>
DSA_HD inline void gather_item(const GatherArgs& a, std::int64_t item) {
  const int chunks = a.dim_qk / kGatherChunk;
  const int c = static_cast<int>(item % chunks);
  const std::int64_t slot = item / chunks;
  const std::int64_t r = slot / a.src.topk;
  const std::int64_t j = slot % a.src.topk;
  const std::int64_t b = r / a.seq_q;
  const std::int64_t out_row = r * a.slots + a.slot0 + j;

  dsa::MlaTokenRef tok;  // invalid unless the slot is selected and its index resolves
  if (j < dsa::eligible_slots(a.src.topk, a.src.topk_length, b)) {
    const std::int32_t* bt_row = a.mode == dsa::IndexMode::logical ? a.src.block_table + b * a.src.max_blocks : nullptr;
    tok = dsa::resolve_slot(a.mode, a.src.indices[r * a.src.topk + j], bt_row, a.src.max_blocks,
                            a.src.cache.num_blocks, a.src.cache.page_tokens);
  }
  std::uint16_t codes[kGatherChunk] = {};
  if (tok.valid()) {  // the cache is read for valid slots only (SPEC §3)
    const dsa::MlaPageRef pg = dsa::mla_page_ref(a.src.cache, a.src.values, a.src.scales, tok.block);
    float v[kGatherChunk];
    dsa::read_mla_dims<L>(pg, tok.t, c * kGatherChunk, kGatherChunk, a.model, v);
    for (int i = 0; i < kGatherChunk; ++i) codes[i] = float_to_bf16(v[i]);  // RNE to the bf16 workspace
  }
  store_bf16x8(a.workspace + out_row * a.dim_qk + c * kGatherChunk, codes);
  if (c == 0) a.rebuilt_indices[out_row] = tok.valid() ? static_cast<std::int32_t>(out_row) : -1;
}

template <dsa::MlaLayout L>
__global__ void __launch_bounds__(256) sparse_mla_gather_kernel(const GatherArgs a) {
  const std::int64_t n = gather_items(a);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    gather_item<L>(a, i);
}

inline GatherArgs make_gather_args(const SparseMlaGatherParams& p, GatherPart part) {
  GatherArgs a;
  a.src = part == GatherPart::primary ? p.primary : p.extra;
  a.rows = p.batch * p.seq_q;
  a.seq_q = p.seq_q;
  a.slots = p.primary.topk + p.extra.topk;
  a.slot0 = part == GatherPart::primary ? 0 : p.primary.topk;
  a.dim_qk = sparse_mla_gather_dim_qk(p);
  a.mode = p.mode;
  a.model = p.model;
  a.workspace = p.workspace;
  a.rebuilt_indices = p.rebuilt_indices;
  return a;
}


template <dsa::MlaLayout L>
void launch_gather(const GatherArgs& a, Stream stream) {
  const std::int64_t n = gather_items(a);
  if (n == 0) return;
  constexpr int kThreads = 256;
  // Enough blocks to fill any current GPU many times over; the grid-stride loop takes the rest.
  const std::int64_t blocks = std::min<std::int64_t>((n + kThreads - 1) / kThreads, std::int64_t{1} << 20);
  sparse_mla_gather_kernel<L><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
}

}  // namespace dsa::gpu::detail

namespace dsa::gpu {

template <dsa::MlaLayout L>
void sparse_mla_gather_part(const SparseMlaGatherParams& p, GatherPart part, Stream stream) {
  const bool primary = part == GatherPart::primary;
  const MlaGatherSource& src = primary ? p.primary : p.extra;
  dsa::require_layout(src.cache, L, primary ? "primary.cache" : "extra.cache");
  validate(p);
  detail::launch_gather<L>(detail::make_gather_args(p, part), stream);
}

// One explicit instantiation per file under gpu/instances/.
#define DSA_INSTANTIATE_SPARSE_MLA_GATHER(L) \
  template void sparse_mla_gather_part<L>(const SparseMlaGatherParams&, GatherPart, Stream);

}  // namespace dsa::gpu
