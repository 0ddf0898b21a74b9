// The DSA decode step (SPEC §6.5) in one call: indexer logits (paged_mqa_logits) → top-k
// positions per query row (topk_indices, k = 2048 by default) → sparse MLA decode in logical
// mode over exactly those positions (−1 padding is an invalid slot). Every intermediate result is
// returned, so each stage can be checked on its own.
#pragma once

#include <cstdint>
#include <vector>

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

namespace gold {
// gold paged_mqa_logits → topk_indices → sparse_mla_decode_gold (outputs rounded like a kernel's).
DsaDecodeStepResult dsa_decode_step(const DsaDecodeStepParams& p);
}  // namespace gold
namespace fast {
// fast paged_mqa_logits → topk_indices → sparse_mla_decode_fast.
DsaDecodeStepResult dsa_decode_step(const DsaDecodeStepParams& p, const SparseMlaFastOptions& options = {});
}  // namespace fast

}  // namespace dsa
