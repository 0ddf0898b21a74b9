// quantize_index_k on the GPU: host-side validation (SPEC §8), status decoding and dispatch by
// layout tag (plain C++). Kernels: gpu/index_k_store_kernel.cuh.
#include "dsa/gpu/index_k_store.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>

#include "dsa/error.hpp"
#include "dsa/formats.hpp"
#include "indexer_kernel_limits.hpp"

namespace dsa::gpu {

void validate(const IndexKStoreParams& p) {
  dsa::validate(p.cache, "cache");
  require_layout(p.cache, p.writer_layout, "cache");
  if (p.n < 0) throw InvalidArgument("n", fmt::format("must be ≥ 0 (got {})", p.n));
  // The CPU writer's rule for fmax (dsa::quantize_index_k): 0 (the format's max) or a positive
  // finite value no larger than that max.
  if (!(p.fmax == 0.0f || (std::isfinite(p.fmax) && p.fmax > 0.0f && p.fmax <= fp8_max(p.cache.fp8))))
    throw InvalidArgument("fmax", fmt::format("must be 0 (the format's max) or in (0, {}] (got {})",
                                              fp8_max(p.cache.fp8), p.fmax));
  if (p.status == nullptr) throw InvalidArgument("status", "is null: the device-side checks report there");
  detail::check_aligned(p.status, 4, "status");
  if (p.n == 0) return;
  detail::check_pointer(p.k, "k", "n > 0");
  detail::check_aligned(p.k, 4, "k");
  detail::check_pointer(p.slot_mapping, "slot_mapping", "n > 0");
  detail::check_aligned(p.slot_mapping, 8, "slot_mapping");
  detail::check_pointer(p.cache_bytes, "cache_bytes", "n > 0");
  detail::check_aligned(p.cache_bytes, 4, "cache_bytes");
}

void check_index_k_store_status(std::int32_t status) {
  if (status & kIndexKStoreBadSlot)
    throw InvalidArgument("slot_mapping", "an entry is neither −1 (skip) nor in [0, num_blocks·page_tokens)");
  if (status != 0) throw InvalidArgument("status", fmt::format("holds unknown bits {:#x}", status));
}

void quantize_index_k(const IndexKStoreParams& p, Stream stream) {
  switch (p.writer_layout) {
    case IndexKLayout::standard: return quantize_index_k_as<IndexKLayout::standard>(p, stream);
    case IndexKLayout::preshuffle: return quantize_index_k_as<IndexKLayout::preshuffle>(p, stream);
  }
  throw InvalidArgument("writer_layout", "is not a known indexer K layout");
}

}  // namespace dsa::gpu
