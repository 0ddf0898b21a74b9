// paged_mqa_logits on the GPU: host-side validation (SPEC §8), status decoding and dispatch by
// layout tag (plain C++). Kernels: gpu/mqa_logits_kernel.cuh, instantiated per layout in
// gpu/instances/paged_mqa_logits_<layout>.cu; the device-side checks in gpu/paged_mqa_logits.cu.
#include "dsa/gpu/paged_mqa_logits.hpp"

#include <fmt/format.h>

#include <cstdint>

#include "dsa/error.hpp"
#include "indexer_kernel_limits.hpp"

namespace dsa::gpu {

void validate(const PagedMqaLogitsParams& p) {
  if (p.batch < 0 || p.batch > INT32_MAX)
    throw InvalidArgument("batch", fmt::format("must be in [0, 2^31) (got {})", p.batch));
  if (p.next_n < 1 || p.next_n > detail::kIndexerMaxNextN)
    throw InvalidArgument("next_n", fmt::format("must be in [1, {}] for the GPU kernel (got {})",
                                                detail::kIndexerMaxNextN, p.next_n));
  detail::check_heads_and_dim(p.num_heads, p.head_dim);
  dsa::validate(p.cache, "cache");
  require_layout(p.cache, p.reader_layout, "cache");
  if (p.cache.head_dim != p.head_dim)
    throw InvalidArgument("head_dim",
                          fmt::format("must equal cache.head_dim = {} (got {})", p.cache.head_dim, p.head_dim));
  detail::check_k_scale_at(p.k_scale_at);
  if (p.max_blocks < 0) throw InvalidArgument("max_blocks", fmt::format("must be ≥ 0 (got {})", p.max_blocks));
  if (p.max_ctx < 0 || p.max_ctx > INT32_MAX)
    throw InvalidArgument("max_ctx", fmt::format("must be in [0, 2^31) (got {})", p.max_ctx));
  if (p.logits_row_stride < p.max_ctx)
    throw InvalidArgument("logits_row_stride",
                          fmt::format("must be ≥ max_ctx = {} (got {})", p.max_ctx, p.logits_row_stride));
  if (p.status == nullptr) throw InvalidArgument("status", "is null: the device-side checks report there");
  detail::check_aligned(p.status, 4, "status");
  const std::int64_t rows = p.rows();
  if (rows == 0) return;
  detail::check_pointer(p.q, "q", "B·N·H·D > 0");
  detail::check_aligned(p.q, 16, "q");
  detail::check_pointer(p.weights, "weights", "B·N·H > 0");
  detail::check_aligned(p.weights, 4, "weights");
  detail::check_pointer(p.context_lens, "context_lens", "B > 0");
  detail::check_aligned(p.context_lens, 4, "context_lens");
  if (p.max_blocks > 0) {
    detail::check_pointer(p.block_table, "block_table", "B·max_blocks > 0");
    detail::check_aligned(p.block_table, 4, "block_table");
  }
  if (p.cache.bytes() > 0) {
    detail::check_pointer(p.cache_bytes, "cache_bytes", "the cache holds bytes");
    detail::check_aligned(p.cache_bytes, 4, "cache_bytes");
  }
  if (p.max_ctx > 0) {
    detail::check_pointer(p.logits, "logits", "B·N·max_ctx > 0");
    detail::check_aligned(p.logits, 4, "logits");
  }
}

void check_paged_mqa_logits_status(std::int32_t status) {
  if (status & kPagedLogitsBadContextLen) throw InvalidArgument("context_lens", "an entry is < 0");
  if (status & kPagedLogitsTooFewBlocks)
    throw InvalidArgument("block_table", "a sequence sees more positions than max_blocks·page_tokens");
  if (status & kPagedLogitsBadBlockTable)
    throw InvalidArgument("block_table", "an entry a visible position needs is outside [0, num_blocks)");
  if (status != 0) throw InvalidArgument("status", fmt::format("holds unknown bits {:#x}", status));
}

void paged_mqa_logits(const PagedMqaLogitsParams& p, Stream stream) {
  switch (p.reader_layout) {
    case IndexKLayout::standard: return paged_mqa_logits_as<IndexKLayout::standard>(p, stream);
    case IndexKLayout::preshuffle: return paged_mqa_logits_as<IndexKLayout::preshuffle>(p, stream);
  }
  throw InvalidArgument("reader_layout", "is not a known indexer K layout");
}

}  // namespace dsa::gpu
