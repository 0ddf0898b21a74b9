// topk_indices on the GPU: host-side validation (SPEC §8; plain C++). The kernel is gpu/topk.cu.
#include "dsa/gpu/topk.hpp"

#include <fmt/format.h>

#include <cstdint>

#include "dsa/error.hpp"
#include "indexer_kernel_limits.hpp"

namespace dsa::gpu {

void validate(const TopkParams& p) {
  if (p.rows < 0 || p.rows > INT32_MAX) throw InvalidArgument("rows", fmt::format("must be in [0, 2^31) (got {})", p.rows));
  if (p.k < 1 || p.k > kTopkMaxK)
    throw InvalidArgument("k", fmt::format("must be in [1, {}] for the GPU kernel (got {})", kTopkMaxK, p.k));
  if (p.width < 0 || p.width > INT32_MAX)
    throw InvalidArgument("width", fmt::format("must be in [0, 2^31) (got {})", p.width));
  if (p.row_stride < p.width)
    throw InvalidArgument("row_stride", fmt::format("must be ≥ width = {} (got {})", p.width, p.row_stride));
  if (p.ranges == TopkRanges::paged) {
    if (p.next_n < 1) throw InvalidArgument("next_n", fmt::format("must be ≥ 1 (got {})", p.next_n));
    if (p.rows % p.next_n != 0)
      throw InvalidArgument("rows", fmt::format("must be a multiple of next_n = {} (got {})", p.next_n, p.rows));
  }
  if (p.rows == 0) return;
  detail::check_pointer(p.indices, "indices", "rows > 0");
  detail::check_aligned(p.indices, 4, "indices");
  if (p.width > 0) {
    detail::check_pointer(p.logits, "logits", "rows·width > 0");
    detail::check_aligned(p.logits, 4, "logits");
  }
  if (p.ranges == TopkRanges::paged) {
    detail::check_pointer(p.context_lens, "context_lens", "rows > 0");
    detail::check_aligned(p.context_lens, 4, "context_lens");
  } else {
    detail::check_pointer(p.ks, "ks", "rows > 0");
    detail::check_pointer(p.ke, "ke", "rows > 0");
    detail::check_aligned(p.ks, 4, "ks");
    detail::check_aligned(p.ke, 4, "ke");
  }
}

}  // namespace dsa::gpu
