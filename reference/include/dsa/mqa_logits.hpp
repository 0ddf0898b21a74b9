// mqa_logits (SPEC §6.3): the non-paged fp8 MQA logits of the lightning indexer (prefill), with
// per-row visible ranges [ks, ke). Same formula, reader models and write contract as
// paged_mqa_logits, computed by the same code.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dsa/formats.hpp"
#include "dsa/mqa_logit_formula.hpp"
#include "dsa/visible_range.hpp"

namespace dsa {

struct MqaLogitsParams {
  std::int64_t seq_len = 0;     // S: query rows
  std::int64_t seq_len_kv = 0;  // S_kv: keys
  std::int64_t num_heads = 0;   // H
  std::int64_t head_dim = 0;    // D

  std::span<const std::uint8_t> q;  // [S][H][D] fp8 codes, contiguous
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  std::span<const std::uint8_t> k;  // [S_kv][D] fp8 codes, contiguous
  Fp8Format k_fp8 = Fp8Format::e4m3fn;
  std::span<const float> k_scales;  // [S_kv] fp32, per token
  std::span<const float> weights;   // [S][H] fp32, signed

  std::span<const std::int32_t> ks;  // [S]: row i sees t ∈ [ks[i], ke[i]); 0 ≤ ks ≤ ke ≤ S_kv
  std::span<const std::int32_t> ke;  // [S]
  KScaleAt k_scale_at = KScaleAt::after_head_sum;

  std::span<float> logits;             // [S][logits_row_stride]; positions [0, S_kv) written
  std::int64_t logits_row_stride = 0;  // elements, ≥ S_kv
};

// SPEC §8. Throws dsa::InvalidArgument naming the argument and the rule.
void validate(const MqaLogitsParams& p);

VisibleRange visible_range(const MqaLogitsParams& p, std::int64_t row);  // no validation
std::vector<VisibleRange> visible_ranges(const MqaLogitsParams& p);      // validated

// Both write logit[i][t] for t ∈ [ks[i], ke[i]) and −inf for every other t of [0, S_kv).
namespace gold {
void mqa_logits(const MqaLogitsParams& p);
}  // namespace gold
namespace fast {
void mqa_logits(const MqaLogitsParams& p);
}  // namespace fast

}  // namespace dsa
