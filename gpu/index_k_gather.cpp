// gather_index_k on the GPU: host-side validation, status decoding and dispatch by layout tag
// (plain C++). The gather kernels are instantiated in gpu/instances/index_k_gather_<layout>.cu,
// the table checks in gpu/index_k_gather.cu.
#include "dsa/gpu/index_k_gather.hpp"

#include <fmt/format.h>

#include <climits>
#include <cstdint>

#include "dsa/error.hpp"

namespace dsa::gpu {

void validate(const IndexKGatherParams& p) {
  dsa::validate(p.cache, "cache");
  if (p.batch < 0 || p.batch > INT32_MAX)
    throw InvalidArgument("batch", fmt::format("must be in [0, 2^31) (got {})", p.batch));
  if (p.max_blocks < 0) throw InvalidArgument("max_blocks", fmt::format("must be ≥ 0 (got {})", p.max_blocks));
  if (p.out_tokens < 0) throw InvalidArgument("out_tokens", fmt::format("must be ≥ 0 (got {})", p.out_tokens));
  if (p.status == nullptr) throw InvalidArgument("status", "is null: the device-side checks report there");
  if (reinterpret_cast<std::uintptr_t>(p.status) % alignof(std::int32_t) != 0)
    throw InvalidArgument("status", "must be 4-byte aligned");
  if (p.batch > 0 && p.seq_lens == nullptr) throw InvalidArgument("seq_lens", "is null but batch > 0");
  if (p.batch > 0 && p.max_blocks > 0 && p.block_table == nullptr)
    throw InvalidArgument("block_table", "is null but batch·max_blocks > 0");
  if (p.batch > 0 && p.cache.bytes() > 0 && p.cache_bytes == nullptr)
    throw InvalidArgument("cache_bytes", fmt::format("is null but the cache holds {} B", p.cache.bytes()));
  if (p.out_tokens > 0 && p.out_codes == nullptr) throw InvalidArgument("out_codes", "is null but out_tokens > 0");
  if (p.out_tokens > 0 && p.out_scales == nullptr) throw InvalidArgument("out_scales", "is null but out_tokens > 0");
  if (reinterpret_cast<std::uintptr_t>(p.out_scales) % alignof(float) != 0)
    throw InvalidArgument("out_scales", "must be 4-byte aligned");
}

void check_index_k_status(std::int32_t status) {
  if (status & kIndexKBadSeqLen)
    throw InvalidArgument("seq_lens", "an entry is outside [0, max_blocks·page_tokens]");
  if (status & kIndexKBadBlockTable)
    throw InvalidArgument("block_table", "an entry a sequence uses is outside [0, num_blocks)");
  if (status & kIndexKOutputTooSmall)
    throw InvalidArgument("out_tokens", "Σ seq_lens exceeds the capacity of out_codes / out_scales");
  if (status != 0) throw InvalidArgument("status", fmt::format("holds unknown bits {:#x}", status));
}

void gather_index_k(const IndexKGatherParams& p, Stream stream) {
  switch (p.cache.layout) {
    case IndexKLayout::standard: return gather_index_k_as<IndexKLayout::standard>(p, stream);
    case IndexKLayout::preshuffle: return gather_index_k_as<IndexKLayout::preshuffle>(p, stream);
  }
  throw InvalidArgument("cache.layout", "is not a known indexer K layout");
}

}  // namespace dsa::gpu
