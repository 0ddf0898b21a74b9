// paged_mqa_logits on the GPU: the device-side checks of context lengths and block table (their
// per-item body is host/device, so a test runs it on the CPU) and the launch for layout L, which
// gpu/instances/paged_mqa_logits_<layout>.cu instantiate. The logits kernel itself is
// mqa_logits_kernel.cuh's.
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <cstdint>

#include "dsa/error.hpp"
#include "dsa/gpu/paged_mqa_logits.hpp"
#include "dsa/visible_range.hpp"
#include "mqa_logits_kernel.cuh"
#include "paged_mqa_logits_tma.cuh"

namespace dsa::gpu::detail {

inline constexpr int kPagedCheckThreads = 256;

// The largest visible end over the rows of sequence b (context entries < 0 count as empty rows).
DSA_HD inline std::int64_t paged_sequence_end(const PagedMqaLogitsParams& a, std::int64_t b) {
  std::int64_t end = 0;
  for (std::int64_t i = 0; i < a.next_n; ++i) {
    const VisibleRange v = paged_visible_range(a.context_lens_kind, a.context_lens, b, i, a.next_n, a.max_ctx);
    end = v.end > end ? v.end : end;
  }
  return end;
}

// Check item i of [0, B·(max_blocks + 1)): (b, j) with j < max_blocks checks block-table entry j of
// sequence b if a visible position needs it; j == max_blocks checks b's context lengths and that
// max_blocks covers them. Returns the status bits it found.
DSA_HD inline std::int32_t paged_logits_check_item(const PagedMqaLogitsParams& a, std::int64_t i) {
  const std::int64_t b = i / (a.max_blocks + 1);
  const std::int64_t j = i % (a.max_blocks + 1);
  const std::int64_t P = a.cache.page_tokens;
  // The entry is read before the context lengths say whether it is needed (it is inside the
  // table either way), so the two reads overlap.
  const std::int64_t block = j < a.max_blocks ? a.block_table[b * a.max_blocks + j] : 0;
  const std::int64_t needed = (paged_sequence_end(a, b) + P - 1) / P;
  if (j == a.max_blocks) {
    std::int32_t bits = 0;
    const std::int64_t n = a.context_lens_kind == ContextLens::per_row ? a.next_n : 1;
    for (std::int64_t e = 0; e < n; ++e)
      if (a.context_lens[b * n + e] < 0) bits |= kPagedLogitsBadContextLen;
    if (needed > a.max_blocks) bits |= kPagedLogitsTooFewBlocks;
    return bits;
  }
  if (j >= needed) return 0;
  return block >= 0 && block < a.cache.num_blocks ? 0 : kPagedLogitsBadBlockTable;
}

// Zeroes *status and runs the checks (gpu/paged_mqa_logits.cu).
void launch_paged_logits_checks(const PagedMqaLogitsParams& a, Stream stream);

template <IndexKLayout L>
void launch_paged_mqa_logits(const PagedMqaLogitsParams& p, Stream stream) {
  launch_paged_logits_checks(p, stream);
  if (p.rows() == 0 || p.max_ctx == 0) return;
  LogitsArgs a;
  a.q = p.q;
  a.q_fp8 = p.q_fp8;
  a.k_fp8 = p.cache.fp8;
  a.weights = p.weights;
  a.rows = p.rows();
  a.group_rows = p.next_n;
  a.width = p.max_ctx;
  a.logits = p.logits;
  a.row_stride = p.logits_row_stride;
  a.status = p.status;
  a.k_aligned16 = reinterpret_cast<std::uintptr_t>(p.cache_bytes) % 16 == 0 && p.cache.block_stride_bytes % 16 == 0;
  PagedKSource<L> src;
  src.cache = p.cache_bytes;
  src.block_stride = p.cache.block_stride_bytes;
  src.page_tokens = p.cache.page_tokens;
  src.block_table = p.block_table;
  src.max_blocks = p.max_blocks;
  src.num_blocks = p.cache.num_blocks;
  src.lens_kind = p.context_lens_kind;
  src.context_lens = p.context_lens;
  src.next_n = p.next_n;
  src.max_ctx = p.max_ctx;
#if !defined(DSA_GPU_BACKEND_HIP)
  if (paged_logits_tma_eligible(p)) {
    if (p.num_heads == 32) launch_paged_logits_tma<L, 32>(a, src, p, stream);
    else launch_paged_logits_tma<L, 64>(a, src, p, stream);
    return;
  }
#endif
  dispatch_logits_kernel(a, src, p.batch, p.num_heads, stream);
}

}  // namespace dsa::gpu::detail

namespace dsa::gpu {

template <IndexKLayout L>
void paged_mqa_logits_as(const PagedMqaLogitsParams& p, Stream stream) {
  dsa::require_layout(p.cache, L, "cache");
  if (p.reader_layout != L) throw LayoutMismatch("reader_layout", to_string(p.reader_layout), to_string(L));
  validate(p);
  detail::launch_paged_mqa_logits<L>(p, stream);
}

// One explicit instantiation per file under gpu/instances/: the launch and the warm-up of its
// kernels.
#define DSA_INSTANTIATE_PAGED_MQA_LOGITS(L)                                            \
  template void paged_mqa_logits_as<L>(const PagedMqaLogitsParams&, Stream);           \
  template void detail::warm_logits_kernels<detail::PagedKSource<L>>();

}  // namespace dsa::gpu

namespace dsa::gpu::detail {
extern template void warm_logits_kernels<PagedKSource<IndexKLayout::standard>>();
extern template void warm_logits_kernels<PagedKSource<IndexKLayout::preshuffle>>();
}  // namespace dsa::gpu::detail
