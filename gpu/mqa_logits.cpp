// mqa_logits on the GPU: host-side validation (SPEC §8) and status decoding (plain C++). The
// device-side checks and the launch are in gpu/mqa_logits.cu; the kernel is mqa_logits_kernel.cuh's.
#include "dsa/gpu/mqa_logits.hpp"

#include <fmt/format.h>

#include <cstdint>

#include "dsa/error.hpp"
#include "indexer_kernel_limits.hpp"

namespace dsa::gpu {

void validate(const MqaLogitsParams& p) {
  if (p.seq_len < 0) throw InvalidArgument("seq_len", fmt::format("must be ≥ 0 (got {})", p.seq_len));
  if (p.seq_len_kv < 0 || p.seq_len_kv > INT32_MAX)
    throw InvalidArgument("seq_len_kv", fmt::format("must be in [0, 2^31) (got {})", p.seq_len_kv));
  detail::check_heads_and_dim(p.num_heads, p.head_dim);
  detail::check_k_scale_at(p.k_scale_at);
  if (p.logits_row_stride < p.seq_len_kv)
    throw InvalidArgument("logits_row_stride",
                          fmt::format("must be ≥ seq_len_kv = {} (got {})", p.seq_len_kv, p.logits_row_stride));
  if (p.status == nullptr) throw InvalidArgument("status", "is null: the device-side checks report there");
  detail::check_aligned(p.status, 4, "status");
  if (p.seq_len == 0) return;
  detail::check_pointer(p.q, "q", "S·H·D > 0");
  detail::check_aligned(p.q, 16, "q");
  detail::check_pointer(p.weights, "weights", "S·H > 0");
  detail::check_aligned(p.weights, 4, "weights");
  detail::check_pointer(p.ks, "ks", "S > 0");
  detail::check_aligned(p.ks, 4, "ks");
  detail::check_pointer(p.ke, "ke", "S > 0");
  detail::check_aligned(p.ke, 4, "ke");
  if (p.seq_len_kv == 0) return;
  detail::check_pointer(p.k, "k", "S_kv·D > 0");
  detail::check_aligned(p.k, 4, "k");
  detail::check_pointer(p.k_scales, "k_scales", "S_kv > 0");
  detail::check_aligned(p.k_scales, 4, "k_scales");
  detail::check_pointer(p.logits, "logits", "S·S_kv > 0");
  detail::check_aligned(p.logits, 4, "logits");
}

void check_mqa_logits_status(std::int32_t status) {
  if (status & kMqaLogitsBadKs) throw InvalidArgument("ks", "a row has ks < 0 or ks > ke");
  if (status & kMqaLogitsBadKe) throw InvalidArgument("ke", "a row has ke > seq_len_kv");
  if (status != 0) throw InvalidArgument("status", fmt::format("holds unknown bits {:#x}", status));
}

}  // namespace dsa::gpu
