// gather_index_k on the GPU (SPEC §6.1): for each sequence b, tokens [0, seq_lens[b]) of a paged
// indexer K cache, through block_table[b][·], into contiguous out_codes [Σ seq_lens][head_dim]
// and out_scales [Σ seq_lens] — the same bytes as dsa::gather_index_k.
//
// All pointers are device pointers; arrays are contiguous. The host validates what it can see
// (dsa::InvalidArgument naming the argument; nothing launched on error); the table contents
// live on the device and are checked there by a first kernel, before the gather kernel writes
// anything: a bad table leaves the outputs untouched and sets `*status` (check_index_k_status
// turns it into the same errors). Asynchronous on `stream`; allocates nothing.
#pragma once

#include <cstdint>

#include "dsa/caches.hpp"
#include "dsa/gpu/stream.hpp"
#include "dsa/layouts.hpp"

namespace dsa::gpu {

struct IndexKGatherParams {
  dsa::IndexKGeometry cache;                 // layout tag, fp8 format, page size, head dim, stride
  const std::uint8_t* cache_bytes = nullptr;  // [cache.bytes()] B
  std::int64_t batch = 0;
  std::int64_t max_blocks = 0;
  const std::int32_t* block_table = nullptr;  // [batch][max_blocks]
  const std::int32_t* seq_lens = nullptr;     // [batch], each in [0, max_blocks·page_tokens]
  std::int64_t out_tokens = 0;                // capacity of the outputs in tokens, ≥ Σ seq_lens
  std::uint8_t* out_codes = nullptr;          // [out_tokens][head_dim]
  float* out_scales = nullptr;                // [out_tokens]
  std::int32_t* status = nullptr;             // one int32: set to 0, or IndexKGatherStatus bits
};

// Bits of *status after the launch: which device-side rule a table broke.
enum IndexKGatherStatus : std::int32_t {
  kIndexKGatherOk = 0,
  kIndexKBadSeqLen = 1,        // a seq_lens entry outside [0, max_blocks·page_tokens]
  kIndexKBadBlockTable = 2,    // a block_table entry in use outside [0, num_blocks)
  kIndexKOutputTooSmall = 4,   // Σ seq_lens > out_tokens
};

// Throws the dsa::InvalidArgument that dsa::gather_index_k would have thrown for these bits
// (the status value copied back to the host).
void check_index_k_status(std::int32_t status);

void validate(const IndexKGatherParams& p);

// Dispatches by the cache's layout tag.
void gather_index_k(const IndexKGatherParams& p, Stream stream);

// The kernel compiled for layout L alone: refuses a cache of another layout with
// dsa::LayoutMismatch.
template <dsa::IndexKLayout L>
void gather_index_k_as(const IndexKGatherParams& p, Stream stream);
// Compiled in gpu/instances/index_k_gather_<layout>.cu, one layout per file.
extern template void gather_index_k_as<IndexKLayout::standard>(const IndexKGatherParams&, Stream);
extern template void gather_index_k_as<IndexKLayout::preshuffle>(const IndexKGatherParams&, Stream);

}  // namespace dsa::gpu
