// Internal: the checks shared by the planner (sparse_mla.cpp) and the launcher (sparse_mla.cu).
#pragma once

#include "dsa/gpu/sparse_mla.hpp"
#include "sparse_mla_workspace.hpp"

namespace dsa::gpu::detail {

// Reference validation (SPEC §8) plus the GPU kernels' preconditions.
void check_decode(const SparseMlaDecodeParams& p, MlaAlgo algo);
void check_prefill(const SparseMlaPrefillParams& p);
void check_launch_outputs(const SparseMlaOutputs& o);

MlaWorkspaceLayout decode_workspace(const SparseMlaDecodeParams& p, MlaAlgo algo, int splits);
MlaWorkspaceLayout prefill_workspace(const SparseMlaPrefillParams& p, int splits);

// The plan is usable for this call: legal config and split count, the algorithm the call runs,
// and a workspace of at least `need` bytes, aligned.
void check_plan(const SparseMlaPlan& plan, MlaAlgo algo, const MlaWorkspaceLayout& need, DeviceWorkspace ws);

// Benchmark ablation (bench/gpu/sparse_mla_decode_bench.cu only): later launches skip the parts
// named by `mask` (AttnArgs::ablate) and compute wrong results. 0 restores the kernel.
void set_sparse_mla_ablation(int mask);

}  // namespace dsa::gpu::detail
