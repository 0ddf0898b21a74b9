// The DSA decode step (SPEC §6.5): paged_mqa_logits → topk_indices → sparse_mla_decode (logical).
#include "dsa/dsa_decode_step.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "dsa/error.hpp"
#include "dsa/topk.hpp"
#include "indexer_validation.hpp"

namespace dsa {

namespace {

struct Stages {
  PagedMqaLogitsParams indexer;
  SparseMlaDecodeParams mla;
  SparseMlaOutputs outputs;
};

// Sizes the result, points both stages at its buffers and validates everything before any
// stage runs.
Stages prepare(const DsaDecodeStepParams& p, DsaDecodeStepResult& r) {
  validate_glue(p);

  // Buffers are sized before validation (the stages check their sizes). Logits and out/lse only
  // where the given q backs their extents; otherwise they stay empty and the stage's validation
  // names the real culprit. The top-k buffer is B·N·topk, as asked.
  Stages s{p.indexer, p.mla, {}};
  const auto rows = detail::checked_product({p.indexer.batch, p.indexer.next_n});
  const bool rows_ok = rows && *rows <= static_cast<std::int64_t>(p.indexer.q.size());
  r.rows = rows_ok ? *rows : 0;
  r.max_ctx = p.indexer.max_ctx;
  r.topk = p.topk;
  if (rows_ok && r.max_ctx >= 0) {
    const auto logits = detail::checked_product({r.rows, r.max_ctx});
    if (!logits) throw InvalidArgument("indexer.max_ctx", fmt::format("B·N·max_ctx exceeds int64 (max_ctx {})", r.max_ctx));
    r.logits.assign(static_cast<std::size_t>(*logits), 0.0f);
  }
  s.indexer.logits = r.logits;
  s.indexer.logits_row_stride = std::max<std::int64_t>(r.max_ctx, 0);
  validate_part("indexer", [&] { validate(s.indexer); });

  const auto indices = detail::checked_product({r.rows, p.topk});
  if (!indices) throw InvalidArgument("topk", fmt::format("B·N·topk exceeds int64 (topk {})", p.topk));
  r.indices.assign(static_cast<std::size_t>(*indices), -1);
  const auto q_elems = detail::checked_product({r.rows, p.mla.H, p.mla.cache.geo.dim_qk()});
  if (q_elems && *q_elems <= static_cast<std::int64_t>(p.mla.q.size())) {
    r.out.assign(static_cast<std::size_t>(r.rows * p.mla.H * p.mla.cache.geo.dim_v()), 0);
    r.lse.assign(static_cast<std::size_t>(r.rows * p.mla.H), 0.0f);
  }
  s.mla.index_mode = IndexMode::logical;
  s.mla.indices = r.indices;
  s.mla.topk = p.topk;
  s.outputs.out = r.out;
  s.outputs.lse = r.lse;
  validate_part("mla", [&] { validate(s.mla, s.outputs); });
  return s;
}

void select(const Stages& s, DsaDecodeStepResult& r) {
  r.ranges = visible_ranges(s.indexer);
  topk_indices(r.logits, r.rows, s.indexer.logits_row_stride, r.ranges, r.topk, r.indices);
}

}  // namespace

void validate(const DsaDecodeStepParams& p) {
  DsaDecodeStepResult scratch;
  prepare(p, scratch);
}

namespace gold {

DsaDecodeStepResult dsa_decode_step(const DsaDecodeStepParams& p) {
  DsaDecodeStepResult r;
  const Stages s = prepare(p, r);
  paged_mqa_logits(s.indexer);
  select(s, r);
  sparse_mla_decode_gold(s.mla, s.outputs);
  return r;
}

}  // namespace gold

namespace fast {

DsaDecodeStepResult dsa_decode_step(const DsaDecodeStepParams& p, const SparseMlaFastOptions& options) {
  DsaDecodeStepResult r;
  const Stages s = prepare(p, r);
  paged_mqa_logits(s.indexer);
  select(s, r);
  sparse_mla_decode_fast(s.mla, s.outputs, options);
  return r;
}

}  // namespace fast
}  // namespace dsa
