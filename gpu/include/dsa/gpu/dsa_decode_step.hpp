// The DSA decode step on the GPU (SPEC §6.5): indexer logits (paged_mqa_logits) → top-k positions
// per query row (topk_indices) → fused sparse MLA decode in logical mode over those positions, as
// one call of three launch groups on one stream. The GPU twin of the reference's
// dsa/dsa_decode_step.hpp: the same glue rules and argument names ("indexer.…", "mla.…").
//
// The intermediates (logits, indices, the logits kernel's device-side status) live in the
// caller's workspace at places the plan fixes, so a call allocates nothing, never synchronises the
// host and is capturable in one CUDA graph; dsa_decode_step_buffers() points at them so that
// each stage can be read back and checked on its own.
//
// Order of the top-k indices is the GPU top-k's (topk.hpp: the selected SET is the reference's
// up to ties, the order is not); attention does not depend on the order beyond fp rounding.
//
// Errors: everything the host can see is validated before the first launch (dsa::InvalidArgument
// naming the argument; nothing is written). The indexer's context lengths and block table live on
// the device and are checked there (paged_mqa_logits.hpp): a bad entry sets the status word in
// the workspace, the logits are left untouched, and the attention kernels read the same word at
// launch and write nothing either, so `out` / `lse` keep what they held (SPEC §8). The top-k
// still fills the workspace's index buffer. Read the status (check_paged_mqa_logits_status) after
// the stream's work completes to learn which rule broke.
#pragma once

#include <cstdint>

#include "dsa/gpu/paged_mqa_logits.hpp"
#include "dsa/gpu/sparse_mla.hpp"
#include "dsa/gpu/stream.hpp"
#include "dsa/sparse_mla.hpp"

namespace dsa::gpu {

struct DsaDecodeStepParams {
  // The indexer call. `logits`, `logits_row_stride` and `status` are ignored: the step keeps them
  // in the workspace.
  PagedMqaLogitsParams indexer;
  std::int32_t topk = 2048;  // k of the top-k, in [1, kTopkMaxK]
  // The attention call over device memory: B = indexer.batch, S_q = indexer.next_n, its own MLA
  // cache (fp8 layout: the fused kernel) and block table, whose positions are the indexer's. The
  // step sets index_mode = logical, indices and topk; leave `indices` and `topk_length` empty.
  SparseMlaDecodeParams mla;
};

// Made once on the host for fixed shapes (so that a graph can be captured). Workspace layout, each
// part 256-byte aligned: logits fp32 [B·N][logits_row_stride], indices int32 [B][N][topk], the
// status word, then the attention plan's own workspace.
struct DsaDecodeStepPlan {
  std::int64_t rows = 0;               // B·N
  std::int64_t max_ctx = 0;            // logits width
  std::int64_t logits_row_stride = 0;  // elements: max_ctx rounded up to 16 bytes
  std::int32_t topk = 0;
  SparseMlaPlan mla;                   // fused, S_q = next_n, logical mode
  std::int64_t logits_offset = 0, logits_bytes = 0;
  std::int64_t indices_offset = 0, indices_bytes = 0;
  std::int64_t status_offset = 0;
  std::int64_t mla_offset = 0;
  std::int64_t workspace_bytes = 0;    // what a call needs
  int launches = 0;                    // kernel and memset launches per call
};

// Validates the step (as validate() below; device pointers are not needed yet and are not read)
// and plans it. `config` is a resolved sparse MLA config for T = B·N query rows; `sm_count` the
// device's multiprocessor count. The second form resolves the config from DSA_SPARSE_MLA_CONFIG
// (SPEC §7) and asks the current device for its SM count.
DsaDecodeStepPlan plan_dsa_decode_step(const DsaDecodeStepParams& p, const SparseMlaConfig& config, int sm_count);
DsaDecodeStepPlan plan_dsa_decode_step(const DsaDecodeStepParams& p);

// The intermediates of a call inside `workspace` (pointer arithmetic only; nothing launched).
struct DsaDecodeStepBuffers {
  float* logits = nullptr;           // [B·N][plan.logits_row_stride]; [max_ctx, stride) never written
  std::int32_t* indices = nullptr;   // [B][N][topk], −1 padding
  std::int32_t* status = nullptr;    // PagedMqaLogitsStatus bits of the last call
  DeviceWorkspace mla;               // the attention's temporaries
};
DsaDecodeStepBuffers dsa_decode_step_buffers(const DsaDecodeStepPlan& plan, DeviceWorkspace workspace);

// SPEC §8 for the step on the GPU: the glue (topk, B and S_q agree, indices and topk_length left
// to the step), every stage's GPU validation (argument names prefixed by the stage), and for a
// call the outputs ("out", "lse", "max_logits"), the plan ("plan") and the workspace
// ("workspace"). Throws dsa::InvalidArgument (dsa::LayoutMismatch for a layout tag).
void validate(const DsaDecodeStepParams& p);

// One step: logits → top-k → fused attention, asynchronous on `stream`. `o.out` required,
// `o.lse` and `o.max_logits` optional (SparseMlaOutputs as for sparse_mla_decode).
void dsa_decode_step(const DsaDecodeStepParams& p, const SparseMlaOutputs& o, const DsaDecodeStepPlan& plan,
                     DeviceWorkspace workspace, Stream stream);

// SPEC §7: loads every kernel the step may launch (paged_mqa_logits_warmup, topk_warmup,
// sparse_mla_warmup). Synchronises the device; not capturable.
void dsa_decode_step_warmup(Stream stream);

}  // namespace dsa::gpu
