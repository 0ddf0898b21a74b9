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

// Runs a stage's validation, naming the stage in the argument ("indexer.block_table"). A layout
// mismatch keeps its type; its message already names the two layouts of its stage.
template <class F>
void validate_stage(const char* stage, F&& f) {
  try {
    f();
  } catch (const LayoutMismatch&) {
    throw;
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string(stage) + "." + e.argument(), e.rule());
  }
}

struct Stages {
  PagedMqaLogitsParams indexer;
  SparseMlaDecodeParams mla;
  SparseMlaOutputs outputs;
};

// Sizes the result, points both stages at its buffers and validates everything before any
// stage runs.
Stages prepare(const DsaDecodeStepParams& p, DsaDecodeStepResult& r) {
  if (p.topk < 1) throw InvalidArgument("topk", fmt::format("must be ≥ 1 (got {})", p.topk));
  if (!p.mla.indices.empty()) throw InvalidArgument("mla.indices", "is set by the step from the top-k; leave it empty");
  if (!p.mla.topk_length.empty())
    throw InvalidArgument("mla.topk_length", "must be empty: every top-k slot counts, −1 padding marks the rest");
  if (p.mla.B != p.indexer.batch)
    throw InvalidArgument("mla.B", fmt::format("must equal indexer.batch = {} (got {})", p.indexer.batch, p.mla.B));
  if (p.mla.S_q != p.indexer.next_n)
    throw InvalidArgument("mla.S_q", fmt::format("must equal indexer.next_n = {} (got {})", p.indexer.next_n, p.mla.S_q));

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
  validate_stage("indexer", [&] { validate(s.indexer); });

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
  validate_stage("mla", [&] { validate(s.mla, s.outputs); });
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
