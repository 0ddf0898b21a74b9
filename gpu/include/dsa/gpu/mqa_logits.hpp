// mqa_logits on the GPU (SPEC §6.3): the non-paged fp8 MQA logits of the lightning indexer, row i
// seeing keys [ks[i], ke[i]). Same kernel, arithmetic, reader model (s_K after the head sum) and
// write contract as paged_mqa_logits (dsa/gpu/paged_mqa_logits.hpp): every position of [0, S_kv)
// of every row is written, −inf where not visible.
//
// All pointers are device pointers, arrays contiguous. ks/ke live on the device and are checked
// there before anything is written (*status bits; check_mqa_logits_status turns them into the
// errors dsa::validate would throw). Asynchronous, allocates nothing, capturable in a graph.
// Kernel limits as for paged_mqa_logits: head_dim = 128, num_heads ∈ {32, 64},
// k_scale_at = after_head_sum.
#pragma once

#include <cstdint>

#include "dsa/formats.hpp"
#include "dsa/gpu/stream.hpp"
#include "dsa/mqa_logit_formula.hpp"

namespace dsa::gpu {

struct MqaLogitsParams {
  std::int64_t seq_len = 0;     // S: query rows
  std::int64_t seq_len_kv = 0;  // S_kv: keys
  std::int64_t num_heads = 0;   // H ∈ {32, 64}
  std::int64_t head_dim = 0;    // D = 128

  const std::uint8_t* q = nullptr;  // [S][H][D] fp8 codes
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  const std::uint8_t* k = nullptr;  // [S_kv][D] fp8 codes
  Fp8Format k_fp8 = Fp8Format::e4m3fn;
  const float* k_scales = nullptr;  // [S_kv]
  const float* weights = nullptr;   // [S][H]

  const std::int32_t* ks = nullptr;  // [S]: 0 ≤ ks ≤ ke ≤ S_kv (checked on the device)
  const std::int32_t* ke = nullptr;  // [S]
  KScaleAt k_scale_at = KScaleAt::after_head_sum;

  float* logits = nullptr;             // [S][logits_row_stride]; positions [0, S_kv) written
  std::int64_t logits_row_stride = 0;  // elements, ≥ S_kv
  std::int32_t* status = nullptr;      // one int32: 0, or MqaLogitsStatus bits
};

enum MqaLogitsStatus : std::int32_t {
  kMqaLogitsOk = 0,
  kMqaLogitsBadKs = 1,  // ks < 0 or ks > ke
  kMqaLogitsBadKe = 2,  // ke > S_kv (with 0 ≤ ks ≤ ke)
};

void validate(const MqaLogitsParams& p);
void check_mqa_logits_status(std::int32_t status);

void mqa_logits(const MqaLogitsParams& p, Stream stream);

// Loads the mqa_logits kernels (SPEC §7 warm-up). Idempotent; needs a device.
void mqa_logits_warmup();

}  // namespace dsa::gpu
