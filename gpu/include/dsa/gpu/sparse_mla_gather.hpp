// Staged sparse MLA, step 1 (SPEC §4 "Staged"): gather + dequantize every selected token of the
// primary and the extra cache into a dense bf16 workspace, and rebuild the indices so that step 2
// is plain attention over materialized rows (the sparse_mla_attention / prefill form).
//
// All pointers are device pointers; arrays are contiguous. The launch validates everything on
// the host first (dsa::InvalidArgument naming the argument; nothing is launched on error),
// allocates nothing, and is asynchronous on `stream`.
#pragma once

#include <cstdint>

#include "dsa/caches.hpp"
#include "dsa/gpu/stream.hpp"
#include "dsa/layouts.hpp"
#include "dsa/reader_model.hpp"
#include "dsa/mla_slots.hpp"

namespace dsa::gpu {

// One cache and the slots selected from it (the primary or the extra cache of SPEC §4).
struct MlaGatherSource {
  dsa::MlaCacheGeometry cache;                 // layout tag, fp8 format, page size, strides
  const std::uint8_t* values = nullptr;        // [cache.values_bytes()] B
  const std::uint8_t* scales = nullptr;        // [cache.scales_bytes()] B, MODEL1_SPLIT only
  const std::int32_t* indices = nullptr;       // [B][S_q][topk]
  std::int32_t topk = 0;                       // 0: no slots from this cache
  const std::int32_t* topk_length = nullptr;   // [B], or null: every slot is selected
  const std::int32_t* block_table = nullptr;   // [B][max_blocks], logical mode only
  std::int64_t max_blocks = 0;
};

struct SparseMlaGatherParams {
  std::int64_t batch = 0;  // B
  std::int64_t seq_q = 1;  // S_q; T = B·S_q query rows, row r = b·S_q + s
  dsa::IndexMode mode = dsa::IndexMode::physical;  // for both caches
  // The operands are bf16 whatever model.operand says: the workspace holds bf16 (as in
  // dsa::sparse_mla_stage), i.e. code × scale at model.product precision, then bf16 RNE.
  dsa::ReaderModel model = dsa::ReaderModel::staged_bf16();
  MlaGatherSource primary;
  MlaGatherSource extra;  // extra.topk == 0: none; otherwise D_qk equal to the primary's
  // Outputs, K = primary.topk + extra.topk slots per row (primary first, then extra):
  // workspace [T][K][D_qk] bf16 codes, 16-byte aligned: the operands of slot (r, k) as `model`
  //   sees them, bit-identical to dsa::read_mla_token; zeros for an invalid slot.
  // rebuilt_indices [T][K]: r·K + k for a valid slot — its row in the workspace read as a flat
  //   [T·K][D_qk] key tensor — and −1 for an invalid one. T·K must fit in int32. Both are the
  //   layout of dsa::sparse_mla_stage (reference/include/dsa/sparse_mla.hpp).
  std::uint16_t* workspace = nullptr;
  std::int32_t* rebuilt_indices = nullptr;
};

// D_qk of the workspace rows: the primary cache's (the extra cache's when the primary part is
// empty).
int sparse_mla_gather_dim_qk(const SparseMlaGatherParams& p);

// T·K·D_qk·2: the bytes `workspace` must hold (after validation of the shapes).
std::int64_t sparse_mla_gather_workspace_bytes(const SparseMlaGatherParams& p);

// SPEC §8 checks of everything the host can see (shapes, geometries, pointers, alignment).
void validate(const SparseMlaGatherParams& p);

// Gathers both caches, each with the kernel compiled for its layout tag.
void sparse_mla_gather(const SparseMlaGatherParams& p, Stream stream);

enum class GatherPart : std::uint8_t { primary, extra };

// The kernel compiled for layout L alone, for one part: it refuses a cache of another layout with
// dsa::LayoutMismatch. sparse_mla_gather() dispatches to these.
template <dsa::MlaLayout L>
void sparse_mla_gather_part(const SparseMlaGatherParams& p, GatherPart part, Stream stream);
// Compiled in gpu/instances/sparse_mla_gather_<layout>.cu, one layout per file; no other
// translation unit instantiates a kernel.
extern template void sparse_mla_gather_part<MlaLayout::V32>(const SparseMlaGatherParams&, GatherPart, Stream);
extern template void sparse_mla_gather_part<MlaLayout::MODEL1>(const SparseMlaGatherParams&, GatherPart, Stream);
extern template void sparse_mla_gather_part<MlaLayout::MODEL1_SPLIT>(const SparseMlaGatherParams&, GatherPart, Stream);
extern template void sparse_mla_gather_part<MlaLayout::BF16>(const SparseMlaGatherParams&, GatherPart, Stream);

}  // namespace dsa::gpu
