// quantize_index_k on the GPU (SPEC §6.1 writer): fp32 K rows [n][head_dim] → fp8 codes and
// per-token fp32 scales (s = max(amax, 1e-4) / fmax, optionally rounded up to a power of two —
// ue8m0) in a paged index K cache of either layout, at slot_mapping[i] = block·P + t; −1 skips a
// row. The same bytes as dsa::quantize_index_k, bit for bit.
//
// All pointers are device pointers, arrays contiguous. The host validates what it can see
// (dsa::InvalidArgument; a cache of another layout than `writer_layout` is dsa::LayoutMismatch
// naming both); the slot mapping lives on the device and is checked there by a first kernel
// before anything is written (*status; check_index_k_store_status turns it into the error
// dsa::quantize_index_k throws). Two rows naming the same slot: which row's bytes land is not
// specified (the CPU writer keeps the last). Asynchronous; allocates nothing.
#pragma once

#include <cstdint>

#include "dsa/caches.hpp"
#include "dsa/gpu/stream.hpp"
#include "dsa/layouts.hpp"

namespace dsa::gpu {

struct IndexKStoreParams {
  dsa::IndexKGeometry cache;            // layout tag, fp8 format, page size, head dim, stride
  std::uint8_t* cache_bytes = nullptr;  // [cache.bytes()]
  IndexKLayout writer_layout = IndexKLayout::standard;  // cache.layout must match
  std::int64_t n = 0;                   // rows
  const float* k = nullptr;             // [n][cache.head_dim] fp32
  const std::int64_t* slot_mapping = nullptr;  // [n]: −1 (skip) or in [0, num_blocks·P)
  bool ue8m0_scale = false;             // round each scale up to a power of two
  float fmax = 0.0f;                    // 0 → the format's max (448 e4m3fn, 240 e4m3fnuz)
  std::int32_t* status = nullptr;       // one int32: 0, or IndexKStoreStatus bits
};

enum IndexKStoreStatus : std::int32_t {
  kIndexKStoreOk = 0,
  kIndexKStoreBadSlot = 1,  // a slot_mapping entry is neither −1 nor in [0, num_blocks·P)
};

void validate(const IndexKStoreParams& p);
void check_index_k_store_status(std::int32_t status);

// Dispatches by writer_layout (after checking the cache carries it).
void quantize_index_k(const IndexKStoreParams& p, Stream stream);

// The kernel compiled for layout L alone: refuses a cache of another layout (dsa::LayoutMismatch).
template <dsa::IndexKLayout L>
void quantize_index_k_as(const IndexKStoreParams& p, Stream stream);
extern template void quantize_index_k_as<IndexKLayout::standard>(const IndexKStoreParams&, Stream);
extern template void quantize_index_k_as<IndexKLayout::preshuffle>(const IndexKStoreParams&, Stream);

// Loads the store kernels (SPEC §7 warm-up). Idempotent; needs a device.
void index_k_store_warmup();

}  // namespace dsa::gpu
