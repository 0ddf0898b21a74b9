// The DSA decode step (SPEC §6.5) in one call: indexer logits (paged_mqa_logits) → top-k
// positions per query row (topk_indices, k = 2048 by default) → sparse MLA decode in logical
// mode over exactly those positions (−1 padding is an invalid slot). Every intermediate result is
// returned, so each stage can be checked on its own.
#pragma once

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "dsa/error.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/sparse_mla.hpp"
#include "dsa/visible_range.hpp"

namespace dsa {

struct DsaDecodeStepParams {
  // The indexer call. `logits` and `logits_row_stride` are ignored: the step owns its logits
  // buffer [B·N][max_ctx] and returns it.
  PagedMqaLogitsParams indexer;
  std::int32_t topk = 2048;  // k of the top-k, ≥ 1
  // The attention call: B = indexer.batch, S_q = indexer.next_n, its own MLA cache and block
  // table (positions are the indexer's positions). The step sets index_mode = logical, indices
  // and topk; leave `indices` and `topk_length` empty.
  SparseMlaDecodeParams mla;
};

struct DsaDecodeStepResult {
  std::int64_t rows = 0;              // B·N
  std::int64_t max_ctx = 0;
  std::int32_t topk = 0;
  std::vector<float> logits;          // [B·N][max_ctx], −inf where masked
  std::vector<VisibleRange> ranges;   // [B·N]
  std::vector<std::int32_t> indices;  // [B][N][topk]: (logit desc, position asc), −1 padding
  std::vector<std::uint16_t> out;     // bf16 [B·N][H][D_v]
  std::vector<float> lse;             // fp32 [B·N][H]
};

// SPEC §8 for both stages and the glue (B and S_q agree, topk ≥ 1, indices left to the step).
// Throws dsa::InvalidArgument; argument names carry the stage ("indexer.…", "mla.…").
void validate(const DsaDecodeStepParams& p);

// The glue rules alone, for this step's parameters and the GPU step's (same fields over device
// memory): topk in [1, max_topk], mla.indices and mla.topk_length left to the step,
// mla.B = indexer.batch, mla.S_q = indexer.next_n.
template <class StepParams>
void validate_glue(const StepParams& p, std::int32_t max_topk = INT32_MAX) {
  const std::string got = " (got " + std::to_string(p.topk) + ")";
  if (p.topk < 1 || p.topk > max_topk)
    throw InvalidArgument("topk", max_topk == INT32_MAX ? "must be ≥ 1" + got
                                                        : "must be in [1, " + std::to_string(max_topk) +
                                                              "] for this implementation" + got);
  if (!p.mla.indices.empty()) throw InvalidArgument("mla.indices", "is set by the step from the top-k; leave it empty");
  if (!p.mla.topk_length.empty())
    throw InvalidArgument("mla.topk_length", "must be empty: every top-k slot counts, −1 padding marks the rest");
  if (p.mla.B != p.indexer.batch)
    throw InvalidArgument("mla.B", "must equal indexer.batch = " + std::to_string(p.indexer.batch) + " (got " +
                                       std::to_string(p.mla.B) + ")");
  if (p.mla.S_q != p.indexer.next_n)
    throw InvalidArgument("mla.S_q", "must equal indexer.next_n = " + std::to_string(p.indexer.next_n) + " (got " +
                                         std::to_string(p.mla.S_q) + ")");
}

namespace gold {
// gold paged_mqa_logits → topk_indices → sparse_mla_decode_gold (outputs rounded like a kernel's).
DsaDecodeStepResult dsa_decode_step(const DsaDecodeStepParams& p);
}  // namespace gold
namespace fast {
// fast paged_mqa_logits → topk_indices → sparse_mla_decode_fast.
DsaDecodeStepResult dsa_decode_step(const DsaDecodeStepParams& p, const SparseMlaFastOptions& options = {});
}  // namespace fast

}  // namespace dsa
