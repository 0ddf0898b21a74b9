// What the indexer-logits kernels are built for, and the pointer checks of their host-side
// validation (private to gpu/; plain C++). Shared by paged_mqa_logits and mqa_logits.
#pragma once

#include <fmt/format.h>

#include <cstdint>

#include "dsa/error.hpp"
#include "dsa/mqa_logit_formula.hpp"

namespace dsa::gpu::detail {

inline constexpr std::int64_t kIndexerMaxNextN = 4;  // rows of a sequence staged together
inline constexpr std::int64_t kIndexerHeadDim = 128;

inline void check_heads_and_dim(std::int64_t num_heads, std::int64_t head_dim) {
  if (num_heads != 32 && num_heads != 64)
    throw InvalidArgument("num_heads", fmt::format("must be 32 or 64 for the GPU kernel (got {})", num_heads));
  if (head_dim != kIndexerHeadDim)
    throw InvalidArgument("head_dim", fmt::format("must be {} for the GPU kernel (got {})", kIndexerHeadDim, head_dim));
}

inline void check_k_scale_at(KScaleAt at) {
  if (at != KScaleAt::after_head_sum)
    throw InvalidArgument("k_scale_at", fmt::format("the GPU kernel implements after_head_sum (DeepGEMM's reader "
                                                    "model), not {}",
                                                    to_string(at)));
}

inline void check_pointer(const void* p, const char* name, const char* why) {
  if (p == nullptr) throw InvalidArgument(name, fmt::format("is null but {}", why));
}

inline void check_aligned(const void* p, std::uintptr_t bytes, const char* name) {
  if (reinterpret_cast<std::uintptr_t>(p) % bytes != 0)
    throw InvalidArgument(name, fmt::format("must be {}-byte aligned", bytes));
}

}  // namespace dsa::gpu::detail
