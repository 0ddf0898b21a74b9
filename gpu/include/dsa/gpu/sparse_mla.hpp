// Sparse MLA on the GPU (SPEC §4 decode, §5 prefill): the fused fp8 decode, the staged decode
// (gather + dequantize into a bf16 workspace, then sparse_mla_attention over it), prefill, split-KV
// with its combine, and the launch plan (SPEC §7 config + split count).
//
// The problem descriptions are the reference's own structs (dsa/sparse_mla.hpp) with every span
// over DEVICE memory: the reference's shape validation runs unchanged, and nothing is read from
// them on the host. Launches are asynchronous on `stream`, allocate nothing and never synchronise
// the host: for fixed shapes a call is capturable in a CUDA graph. Temporary storage comes from a
// caller-owned device buffer of plan.workspace_bytes.
#pragma once

#include <cstdint>

#include "dsa/gpu/stream.hpp"
#include "dsa/sparse_mla.hpp"
#include "sparse_mla_config.hpp"

namespace dsa::gpu {

enum class MlaAlgo : std::uint8_t {
  fused,   // one kernel reads the fp8 paged caches inside the attention loop; no staging buffer
  staged,  // sparse_mla_gather into a bf16 workspace, then the attention kernel over it
};
inline const char* to_string(MlaAlgo a) { return a == MlaAlgo::fused ? "fused" : "staged"; }

// Everything a launch needs beyond the problem, fixed before the first call (so a graph can be
// captured): the resolved config, the split count and the temporary storage.
struct SparseMlaPlan {
  MlaAlgo algo = MlaAlgo::fused;
  SparseMlaConfig config;          // block_n ∈ {32, 64}; heads_per_cta 64; num_warps 8; num_stages 2
  int num_splits = 1;              // ≥ 1: 1 = single pass (no partials, no combine)
  int sm_count = 0;                // the device the plan was made for
  std::int64_t grid_ctas = 0;      // CTAs of the attention launch before splitting (rows × head groups)
  std::int64_t staging_bytes = 0;  // staged: the bf16 workspace and rebuilt indices
  std::int64_t partial_bytes = 0;  // split: the fp32 partials
  std::int64_t workspace_bytes = 0;  // staging + partials (+ alignment): the buffer a call needs
  int launches = 0;                // kernel launches per call
};

// Plans (host only; validates the problem, throws dsa::InvalidArgument). `config` is a resolved
// config (resolve_sparse_mla_config*); its num_splits 0 is decided here by choose_num_splits from
// `sm_count` and the grid, 1 forces the single pass, N forces N splits.
// Kernel preconditions checked here (SPEC §9 profile of this project's kernels): conventions are
// FlashMLA's (lse_empty +inf, sink excluded, base e); reader.operand is bf16; q is 16-byte aligned;
// fused needs fp8 layouts (V32, MODEL1, MODEL1_SPLIT) — BF16 caches take the staged path.
SparseMlaPlan plan_sparse_mla_decode(const SparseMlaDecodeParams& p, MlaAlgo algo, const SparseMlaConfig& config,
                                     int sm_count);
SparseMlaPlan plan_sparse_mla_prefill(const SparseMlaPrefillParams& p, const SparseMlaConfig& config, int sm_count);

// The multiprocessor count of the current device (queried once per device).
int device_sm_count();

struct DeviceWorkspace {
  void* ptr = nullptr;  // 256-byte aligned device memory
  std::int64_t bytes = 0;
};

// SPEC §4. `o.out` is required; `o.lse` optional; `o.max_logits` optional (max_j z_j, −inf for an
// empty row). Validation first (nothing is launched on error); then the plan's launches.
// `skip_if_nonzero` (device pointer, optional): when *skip_if_nonzero ≠ 0 at launch time the
// kernels write nothing — how a device-side check upstream (the DSA step's indexer status) keeps
// the outputs untouched without a host synchronisation.
void sparse_mla_decode(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const SparseMlaPlan& plan,
                       DeviceWorkspace workspace, Stream stream, const std::int32_t* skip_if_nonzero = nullptr);

// SPEC §5 with kv of any layout: BF16 rows go through the bf16 loader, fp8 layouts through the
// fused loader (physical addressing).
void sparse_mla_prefill(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, const SparseMlaPlan& plan,
                        DeviceWorkspace workspace, Stream stream);

// The staged path's step 2 as a public entry point: prefill over materialized bf16 rows
// (p.kv must be a BF16 cache, e.g. dsa::dense_bf16_kv over device memory).
void sparse_mla_attention(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, const SparseMlaPlan& plan,
                          DeviceWorkspace workspace, Stream stream);

// Prepares every kernel a process may launch (each attention instantiation, the combine and the
// gathers of every layout): sets their shared-memory limits and runs each once on a tiny problem,
// so module loading and first-launch costs are paid here. Synchronises the device; not capturable.
void sparse_mla_warmup(Stream stream);

}  // namespace dsa::gpu
