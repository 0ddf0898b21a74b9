// Sparse MLA on the GPU: host-side validation of the kernels' preconditions and the launch plan
// (config, split count, workspace). Plain C++; the launches are in sparse_mla.cu.
#include "dsa/gpu/sparse_mla.hpp"

#include <fmt/format.h>

#include <climits>
#include <cstdint>
#include <string>

#include "dsa/error.hpp"
#include "sparse_mla_plan.hpp"
#include "sparse_mla_workspace.hpp"

namespace dsa::gpu {

namespace detail {

namespace {

bool is_fp8_layout(MlaLayout l) {
  return l == MlaLayout::V32 || l == MlaLayout::MODEL1 || l == MlaLayout::MODEL1_SPLIT;
}

void check_common(std::span<const std::uint16_t> q, const ReaderModel& reader, const MlaConventions& conventions,
                  std::int32_t H) {
  if (!(conventions == MlaConventions::flashmla()))
    throw InvalidArgument("conventions", "the GPU kernels return FlashMLA's conventions (lse_empty +inf, sink "
                                         "excluded from lse, natural log); convert outside the kernel");
  if (reader.operand != OperandAs::bf16)
    throw InvalidArgument("reader.operand", "the GPU kernels multiply bf16 operands on the tensor cores (got fp32)");
  if (!q.empty() && reinterpret_cast<std::uintptr_t>(q.data()) % 16 != 0)
    throw InvalidArgument("q", "must be 16-byte aligned (it is copied in 16-byte pieces)");
  (void)H;
}

void check_outputs_aligned(const SparseMlaOutputs& o) {
  if (!o.out.empty() && reinterpret_cast<std::uintptr_t>(o.out.data()) % 4 != 0)
    throw InvalidArgument("out", "must be 4-byte aligned (written as bf16 pairs)");
}

// rows × splits × head groups CTAs must fit the grid's x dimension.
void check_grid(std::int64_t rows, std::int32_t H, int splits) {
  const std::int64_t hg = (static_cast<std::int64_t>(H) + 63) / 64;
  if (rows > 0 && rows * hg > static_cast<std::int64_t>(INT_MAX) / splits)
    throw InvalidArgument("B", fmt::format("rows × head groups × splits = {} × {} × {} exceeds the grid limit 2^31 − 1",
                                           rows, hg, splits));
}

int resolve_splits(const SparseMlaConfig& config, int sm_count, std::int64_t grid_ctas, std::int64_t slots) {
  validate(config, "config");
  if (config.num_splits != 0) return config.num_splits;
  if (sm_count < 1) throw InvalidArgument("sm_count", fmt::format("must be ≥ 1 (got {})", sm_count));
  if (grid_ctas == 0 || slots == 0) return 1;
  return choose_num_splits(sm_count, grid_ctas, slots, config.block_n);
}

}  // namespace

void check_decode(const SparseMlaDecodeParams& p, MlaAlgo algo) {
  validate(p);
  check_common(p.q, p.reader, p.conventions, p.H);
  if (algo == MlaAlgo::fused) {
    if (p.topk > 0 && !is_fp8_layout(p.cache.geo.layout))
      throw InvalidArgument("cache.layout", fmt::format("the fused kernel reads fp8 layouts (V32, MODEL1, MODEL1_SPLIT), "
                                                        "got {}: BF16 caches take the staged path",
                                                        to_string(p.cache.geo.layout)));
    if (p.extra_topk > 0 && !is_fp8_layout(p.extra_cache.geo.layout))
      throw InvalidArgument("extra_cache.layout",
                            fmt::format("the fused kernel reads fp8 layouts (V32, MODEL1, MODEL1_SPLIT), got {}: "
                                        "BF16 caches take the staged path",
                                        to_string(p.extra_cache.geo.layout)));
  } else {
    const std::int64_t k = static_cast<std::int64_t>(p.topk) + p.extra_topk;
    if (p.B * p.S_q * k > INT32_MAX)
      throw InvalidArgument("indices", fmt::format("the staged workspace of T·K = {}·{} rows exceeds the int32 index "
                                                   "range of the rebuilt indices",
                                                   p.B * p.S_q, k));
  }
}

void check_prefill(const SparseMlaPrefillParams& p) {
  validate(p);
  check_common(p.q, p.reader, p.conventions, p.H);
}

MlaWorkspaceLayout decode_workspace(const SparseMlaDecodeParams& p, MlaAlgo algo, int splits) {
  return mla_workspace_layout(p.B * p.S_q, p.H, static_cast<std::int64_t>(p.topk) + p.extra_topk,
                              p.cache.geo.dim_qk(), algo == MlaAlgo::staged, splits);
}

MlaWorkspaceLayout prefill_workspace(const SparseMlaPrefillParams& p, int splits) {
  return mla_workspace_layout(p.S_q, p.H, p.topk, p.kv.geo.dim_qk(), false, splits);
}

void check_plan(const SparseMlaPlan& plan, MlaAlgo algo, const MlaWorkspaceLayout& need, DeviceWorkspace ws) {
  validate(plan.config, "plan.config");
  if (plan.algo != algo) throw InvalidArgument("plan.algo", fmt::format("is {} but this call runs {}", to_string(plan.algo), to_string(algo)));
  if (plan.num_splits < 1 || plan.num_splits > kMaxSplits)
    throw InvalidArgument("plan.num_splits", fmt::format("must be in [1, {}] (got {})", kMaxSplits, plan.num_splits));
  if (ws.bytes < need.total)
    throw InvalidArgument("workspace", fmt::format("holds {} B but the plan needs {} B", ws.bytes, need.total));
  if (need.total > 0 && (ws.ptr == nullptr || reinterpret_cast<std::uintptr_t>(ws.ptr) % kWorkspaceAlign != 0))
    throw InvalidArgument("workspace", fmt::format("must be a {}-byte aligned device pointer", kWorkspaceAlign));
}

void check_launch_outputs(const SparseMlaOutputs& o) { check_outputs_aligned(o); }

}  // namespace detail

SparseMlaPlan plan_sparse_mla_decode(const SparseMlaDecodeParams& p, MlaAlgo algo, const SparseMlaConfig& config,
                                     int sm_count) {
  detail::check_decode(p, algo);
  SparseMlaPlan plan;
  plan.algo = algo;
  plan.config = config;
  plan.sm_count = sm_count;
  const std::int64_t rows = p.B * p.S_q;
  const std::int64_t slots = static_cast<std::int64_t>(p.topk) + p.extra_topk;
  plan.grid_ctas = rows * ((static_cast<std::int64_t>(p.H) + 63) / 64);
  plan.num_splits = detail::resolve_splits(config, sm_count, plan.grid_ctas, slots);
  plan.config.num_splits = plan.num_splits;
  detail::check_grid(rows, p.H, plan.num_splits);
  const auto w = detail::decode_workspace(p, algo, plan.num_splits);
  plan.staging_bytes = w.staged_rows_bytes + w.rebuilt_bytes;
  plan.partial_bytes = w.part_o_bytes + w.part_lse_bytes + w.part_max_bytes;
  plan.workspace_bytes = w.total;
  plan.launches = (plan.num_splits > 1 ? 2 : 1) +
                  (algo == MlaAlgo::staged ? (p.topk > 0 && rows > 0 ? 1 : 0) + (p.extra_topk > 0 && rows > 0 ? 1 : 0) : 0);
  if (plan.grid_ctas == 0) plan.launches = 0;
  return plan;
}

SparseMlaPlan plan_sparse_mla_prefill(const SparseMlaPrefillParams& p, const SparseMlaConfig& config, int sm_count) {
  detail::check_prefill(p);
  SparseMlaPlan plan;
  plan.algo = MlaAlgo::fused;
  plan.config = config;
  plan.sm_count = sm_count;
  plan.grid_ctas = p.S_q * ((static_cast<std::int64_t>(p.H) + 63) / 64);
  plan.num_splits = detail::resolve_splits(config, sm_count, plan.grid_ctas, p.topk);
  plan.config.num_splits = plan.num_splits;
  detail::check_grid(p.S_q, p.H, plan.num_splits);
  const auto w = detail::prefill_workspace(p, plan.num_splits);
  plan.partial_bytes = w.part_o_bytes + w.part_lse_bytes + w.part_max_bytes;
  plan.workspace_bytes = w.total;
  plan.launches = plan.grid_ctas == 0 ? 0 : plan.num_splits > 1 ? 2 : 1;
  return plan;
}

void sparse_mla_attention(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, const SparseMlaPlan& plan,
                          DeviceWorkspace workspace, Stream stream) {
  if (p.kv.geo.layout != MlaLayout::BF16)
    throw InvalidArgument("kv.layout", fmt::format("sparse_mla_attention takes materialized BF16 rows (got {}); "
                                                   "sparse_mla_prefill reads paged fp8 layouts",
                                                   to_string(p.kv.geo.layout)));
  sparse_mla_prefill(p, o, plan, workspace, stream);
}

}  // namespace dsa::gpu
