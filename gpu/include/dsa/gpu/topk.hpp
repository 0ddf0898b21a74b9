// topk_indices on the GPU (SPEC §6.4): per row of indexer logits, the positions of the k largest
// visible logits (fewer than k visible ⇒ all visible, then −1). Visible ranges come from the
// lengths the logits were computed with: paged context lengths (dsa::paged_visible_range) or
// per-row [ks, ke) (dsa::ranged_visible_range), both clipped to [0, width).
//
// Order of values: the reference's (topk.hpp) — NaN ranks above +inf, −0 equals +0, −inf is an
// ordinary value. Output: slots [0, m) hold the m = min(k, |visible|) selected positions — first
// every position whose logit ranks strictly above the k-th largest, then positions tied with it,
// lowest positions first — each group in ascending position order (so the selected set is the
// reference's, but the order is NOT the reference's value order: no stable-order claim); slots
// [m, k) hold −1. Deterministic: the same bits on every run.
//
// One CTA per row: a radix select over the 32-bit order-preserving keys (four 8-bit digit passes
// over the row), then one pass that counts and one that writes. All pointers are device pointers.
// Asynchronous, allocates nothing, capturable in a graph.
#pragma once

#include <cstdint>

#include "dsa/gpu/stream.hpp"
#include "dsa/visible_range.hpp"

namespace dsa::gpu {

inline constexpr std::int64_t kTopkMaxK = 2048;

enum class TopkRanges : std::uint8_t {
  paged,   // context_lens (per_sequence [B] or per_row [B][N]) with next_n, as paged_mqa_logits
  ranged,  // ks / ke [rows], as mqa_logits
};

struct TopkParams {
  const float* logits = nullptr;  // [rows][row_stride]
  std::int64_t rows = 0;
  std::int64_t row_stride = 0;    // elements, ≥ width
  std::int64_t width = 0;         // max_ctx (paged) or S_kv (ranged): ranges are clipped to it
  std::int64_t k = 0;             // 1 ≤ k ≤ kTopkMaxK
  TopkRanges ranges = TopkRanges::paged;
  ContextLens context_lens_kind = ContextLens::per_sequence;
  const std::int32_t* context_lens = nullptr;  // paged
  std::int64_t next_n = 1;                     // paged: rows = B·next_n
  const std::int32_t* ks = nullptr;            // ranged
  const std::int32_t* ke = nullptr;            // ranged
  std::int32_t* indices = nullptr;             // [rows][k]
};

void validate(const TopkParams& p);
void topk_indices(const TopkParams& p, Stream stream);

// Loads the top-k kernel (SPEC §7 warm-up). Idempotent; needs a device.
void topk_warmup();

}  // namespace dsa::gpu
