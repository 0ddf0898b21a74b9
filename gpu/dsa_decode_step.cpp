// The DSA decode step on the GPU (SPEC §6.5): glue validation, planning and the three launches
// (plain C++; the kernels are paged_mqa_logits, topk and sparse_mla's).
#include "dsa/gpu/dsa_decode_step.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "dsa/dsa_decode_step.hpp"  // validate_glue: the reference step's glue rules
#include "dsa/error.hpp"
#include "dsa/gpu/topk.hpp"
#include "sparse_mla_config.hpp"
#include "sparse_mla_plan.hpp"
#include "sparse_mla_workspace.hpp"

namespace dsa::gpu {

namespace {

using detail::align_up;
using detail::kWorkspaceAlign;

// Where validation and planning point the workspace's buffers before a workspace exists: an
// aligned address that is never dereferenced (host code reads no device memory; nothing is
// launched with it).
template <class T>
T* placeholder() {
  return reinterpret_cast<T*>(std::uintptr_t{1} << 16);
}

// max_ctx fp32 rounded up to 16 bytes.
std::int64_t padded_row_stride(std::int64_t max_ctx) { return (max_ctx + 3) / 4 * 4; }

struct Stages {
  PagedMqaLogitsParams indexer;
  TopkParams topk;
  SparseMlaDecodeParams mla;
};

// The three stages' parameters over the given intermediate buffers; validated, nothing launched.
Stages make_stages(const DsaDecodeStepParams& p, float* logits, std::int32_t* indices, std::int32_t* status) {
  dsa::validate_glue(p, static_cast<std::int32_t>(kTopkMaxK));
  Stages s{p.indexer, {}, p.mla};
  s.indexer.logits = logits;
  s.indexer.logits_row_stride = padded_row_stride(p.indexer.max_ctx);
  s.indexer.status = status;
  validate_part("indexer", [&] { validate(s.indexer); });  // batch, next_n and max_ctx < 2^31 from here on

  const std::int64_t rows = s.indexer.rows();
  if (rows > std::numeric_limits<std::int64_t>::max() / 4 / std::max<std::int64_t>(s.indexer.logits_row_stride, 1))
    throw InvalidArgument("indexer.max_ctx", fmt::format("B·N·max_ctx fp32 exceeds int64 bytes (max_ctx {})", p.indexer.max_ctx));
  s.topk.logits = logits;
  s.topk.rows = rows;
  s.topk.row_stride = s.indexer.logits_row_stride;
  s.topk.width = s.indexer.max_ctx;
  s.topk.k = p.topk;
  s.topk.ranges = TopkRanges::paged;
  s.topk.context_lens_kind = s.indexer.context_lens_kind;
  s.topk.context_lens = s.indexer.context_lens;
  s.topk.next_n = s.indexer.next_n;
  s.topk.indices = indices;
  validate_part("topk", [&] { validate(s.topk); });

  s.mla.index_mode = IndexMode::logical;
  s.mla.indices = {indices, static_cast<std::size_t>(rows * p.topk)};
  s.mla.topk = p.topk;
  validate_part("mla", [&] { detail::check_decode(s.mla, MlaAlgo::fused); });
  return s;
}

Stages make_placeholder_stages(const DsaDecodeStepParams& p) {
  return make_stages(p, placeholder<float>(), placeholder<std::int32_t>(), placeholder<std::int32_t>());
}

}  // namespace

void validate(const DsaDecodeStepParams& p) { make_placeholder_stages(p); }

DsaDecodeStepPlan plan_dsa_decode_step(const DsaDecodeStepParams& p, const SparseMlaConfig& config, int sm_count) {
  const Stages s = make_placeholder_stages(p);
  DsaDecodeStepPlan plan;
  plan.rows = s.indexer.rows();
  plan.max_ctx = s.indexer.max_ctx;
  plan.logits_row_stride = s.indexer.logits_row_stride;
  plan.topk = p.topk;
  validate_part("mla", [&] { plan.mla = plan_sparse_mla_decode(s.mla, MlaAlgo::fused, config, sm_count); });
  std::int64_t at = 0;
  plan.logits_offset = at;
  plan.logits_bytes = plan.rows * plan.logits_row_stride * 4;
  at = align_up(at + plan.logits_bytes);
  plan.indices_offset = at;
  plan.indices_bytes = plan.rows * plan.topk * 4;
  at = align_up(at + plan.indices_bytes);
  plan.status_offset = at;
  at = align_up(at + 4);
  plan.mla_offset = at;
  plan.workspace_bytes = align_up(at + plan.mla.workspace_bytes);
  return plan;
}

DsaDecodeStepPlan plan_dsa_decode_step(const DsaDecodeStepParams& p) {
  const std::int64_t rows = p.indexer.batch * p.indexer.next_n;
  return plan_dsa_decode_step(p, resolve_sparse_mla_config_from_env(rows).config, device_sm_count());
}

DsaDecodeStepBuffers dsa_decode_step_buffers(const DsaDecodeStepPlan& plan, DeviceWorkspace workspace) {
  auto* base = static_cast<std::uint8_t*>(workspace.ptr);
  DsaDecodeStepBuffers b;
  if (base == nullptr) return b;
  b.logits = reinterpret_cast<float*>(base + plan.logits_offset);
  b.indices = reinterpret_cast<std::int32_t*>(base + plan.indices_offset);
  b.status = reinterpret_cast<std::int32_t*>(base + plan.status_offset);
  b.mla = {base + plan.mla_offset, plan.workspace_bytes - plan.mla_offset};
  return b;
}

void dsa_decode_step(const DsaDecodeStepParams& p, const SparseMlaOutputs& o, const DsaDecodeStepPlan& plan,
                     DeviceWorkspace workspace, Stream stream) {
  // Everything is checked before the first launch: the step writes nothing on bad input.
  validate(p);
  const std::int64_t rows = p.indexer.batch * p.indexer.next_n;
  if (plan.rows != rows || plan.max_ctx != p.indexer.max_ctx || plan.topk != p.topk ||
      plan.logits_row_stride != padded_row_stride(p.indexer.max_ctx))
    throw InvalidArgument("plan", fmt::format("was made for B·N = {}, max_ctx = {}, topk = {}; this call has {}, {}, {}",
                                              plan.rows, plan.max_ctx, plan.topk, rows, p.indexer.max_ctx, p.topk));
  if (workspace.ptr == nullptr || reinterpret_cast<std::uintptr_t>(workspace.ptr) % kWorkspaceAlign != 0)
    throw InvalidArgument("workspace", fmt::format("must be a {}-byte aligned device pointer", kWorkspaceAlign));
  if (workspace.bytes < plan.workspace_bytes)
    throw InvalidArgument("workspace", fmt::format("holds {} B but the plan needs {} B", workspace.bytes, plan.workspace_bytes));
  const DsaDecodeStepBuffers b = dsa_decode_step_buffers(plan, workspace);
  const Stages s = make_stages(p, b.logits, b.indices, b.status);
  dsa::validate(s.mla, o);  // the outputs (the params passed above): "out", "lse", "max_logits"
  detail::check_launch_outputs(o);
  // The attention plan inside the step's plan: names "plan.…" and "workspace" already.
  detail::check_plan(plan.mla, MlaAlgo::fused, detail::decode_workspace(s.mla, MlaAlgo::fused, plan.mla.num_splits), b.mla);

  paged_mqa_logits(s.indexer, stream);
  topk_indices(s.topk, stream);
  sparse_mla_decode(s.mla, o, plan.mla, b.mla, stream, b.status);  // nothing written if the indexer's checks failed
}

void dsa_decode_step_warmup(Stream stream) {
  paged_mqa_logits_warmup();
  topk_warmup();
  sparse_mla_warmup(stream);
}

}  // namespace dsa::gpu
