// Staged sparse MLA gather: host-side validation and dispatch by layout tag (plain C++). The
// kernels are instantiated in gpu/instances/sparse_mla_gather_<layout>.cu.
#include "dsa/gpu/sparse_mla_gather.hpp"

#include <fmt/format.h>

#include <climits>
#include <cstdint>
#include <string>

#include "dsa/error.hpp"

namespace dsa::gpu {

namespace {

void validate_source(const MlaGatherSource& s, const std::string& n, std::int64_t rows, dsa::IndexMode mode,
                     std::int64_t batch) {
  if (s.topk < 0) throw InvalidArgument(n + ".topk", fmt::format("must be ≥ 0 (got {})", s.topk));
  if (s.topk == 0) return;  // the part is absent; its cache is not looked at
  switch (s.cache.layout) {
    case MlaLayout::V32: case MlaLayout::MODEL1: case MlaLayout::MODEL1_SPLIT: case MlaLayout::BF16: break;
    default: throw InvalidArgument(n + ".cache.layout", "is not a known MLA layout");
  }
  dsa::validate(s.cache, (n + ".cache").c_str());
  const bool any_slot = rows > 0 && s.topk > 0;
  if (!any_slot) return;
  if (s.indices == nullptr) throw InvalidArgument(n + ".indices", "is null but T·topk > 0");
  if (s.cache.values_bytes() > 0 && s.values == nullptr)
    throw InvalidArgument(n + ".values", fmt::format("is null but the cache holds {} B", s.cache.values_bytes()));
  if (s.cache.scales_bytes() > 0 && s.scales == nullptr)
    throw InvalidArgument(n + ".scales", "is null but layout MODEL1_SPLIT keeps its scales there");
  if (mode == dsa::IndexMode::logical) {
    if (s.max_blocks < 0) throw InvalidArgument(n + ".max_blocks", fmt::format("must be ≥ 0 (got {})", s.max_blocks));
    if (batch > 0 && s.max_blocks > 0 && s.block_table == nullptr)
      throw InvalidArgument(n + ".block_table", "is null but the index mode is logical");
  }
}

}  // namespace

void validate(const SparseMlaGatherParams& p) {
  if (p.batch < 0) throw InvalidArgument("batch", fmt::format("must be ≥ 0 (got {})", p.batch));
  if (p.seq_q < 1) throw InvalidArgument("seq_q", fmt::format("must be ≥ 1 (got {})", p.seq_q));
  if (p.batch > INT32_MAX || p.seq_q > INT32_MAX || p.batch * p.seq_q > INT32_MAX)
    throw InvalidArgument("seq_q", fmt::format("T = batch·seq_q = {}·{} must fit in int32", p.batch, p.seq_q));
  const std::int64_t rows = p.batch * p.seq_q;
  validate_source(p.primary, "primary", rows, p.mode, p.batch);
  validate_source(p.extra, "extra", rows, p.mode, p.batch);
  if (p.primary.topk > 0 && p.extra.topk > 0 && p.extra.cache.dim_qk() != p.primary.cache.dim_qk())
    throw InvalidArgument("extra.cache", fmt::format("D_qk {} ({}) must equal the primary cache's D_qk {} ({})",
                                                     p.extra.cache.dim_qk(), dsa::to_string(p.extra.cache.layout),
                                                     p.primary.cache.dim_qk(), dsa::to_string(p.primary.cache.layout)));
  const std::int64_t k = static_cast<std::int64_t>(p.primary.topk) + p.extra.topk;
  if (rows * k > INT32_MAX)
    throw InvalidArgument("rebuilt_indices", fmt::format("T·K = {}·{} rows exceed the int32 index range", rows, k));
  if (rows * k > 0) {
    if (p.workspace == nullptr) throw InvalidArgument("workspace", "is null but T·K > 0");
    if (reinterpret_cast<std::uintptr_t>(p.workspace) % 16 != 0)
      throw InvalidArgument("workspace", "must be 16-byte aligned");
    if (p.rebuilt_indices == nullptr) throw InvalidArgument("rebuilt_indices", "is null but T·K > 0");
  }
}

int sparse_mla_gather_dim_qk(const SparseMlaGatherParams& p) {
  return p.primary.topk > 0 || p.extra.topk <= 0 ? p.primary.cache.dim_qk() : p.extra.cache.dim_qk();
}

std::int64_t sparse_mla_gather_workspace_bytes(const SparseMlaGatherParams& p) {
  const std::int64_t k = static_cast<std::int64_t>(p.primary.topk) + p.extra.topk;
  return p.batch * p.seq_q * k * sparse_mla_gather_dim_qk(p) * 2;
}


namespace {
void gather_part(const SparseMlaGatherParams& p, GatherPart part, Stream stream) {
  const MlaGatherSource& s = part == GatherPart::primary ? p.primary : p.extra;
  switch (s.cache.layout) {
    case MlaLayout::V32: return sparse_mla_gather_part<MlaLayout::V32>(p, part, stream);
    case MlaLayout::MODEL1: return sparse_mla_gather_part<MlaLayout::MODEL1>(p, part, stream);
    case MlaLayout::MODEL1_SPLIT: return sparse_mla_gather_part<MlaLayout::MODEL1_SPLIT>(p, part, stream);
    case MlaLayout::BF16: return sparse_mla_gather_part<MlaLayout::BF16>(p, part, stream);
  }
  throw InvalidArgument(part == GatherPart::primary ? "primary.cache.layout" : "extra.cache.layout",
                        "is not a known MLA layout");
}
}  // namespace

void sparse_mla_gather(const SparseMlaGatherParams& p, Stream stream) {
  validate(p);  // both parts, before the first launch
  if (p.primary.topk > 0) gather_part(p, GatherPart::primary, stream);
  if (p.extra.topk > 0) gather_part(p, GatherPart::extra, stream);
}

}  // namespace dsa::gpu
