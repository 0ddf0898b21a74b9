// The lightning-indexer logit formula of SPEC §6.2, written once for the gold (fp64) and fast
// (fp32) paths of paged_mqa_logits and mqa_logits and for the GPU kernels:
//   logit[t] = s_K[t] · Σ_h w[h] · relu(Σ_d q[h][d] · k[t][d])
// with the reader model `KScaleAt` fixing where the per-token K scale s_K enters. An
// implementation evaluates one logit as
//   acc = 0;  for h in 0..H−1 (in this order):  acc += head_term<At>(dot_h, w[h], s);
//   logit = finish<At>(acc, s)
// where dot_h = Σ_d q[h][d] · k_operand(k[t][d], s, At) — the dot's summation order is free.
#pragma once

#include <cstdint>

#include "dsa/formats.hpp"
#include "dsa/hd.hpp"

namespace dsa {

enum class KScaleAt : std::uint8_t {
  after_head_sum,  // DeepGEMM: logit = s · Σ_h w_h · relu(q_h·k)                    (default)
  per_head,        // aiter:    logit = Σ_h w_h · relu(s · (q_h·k))
  on_k_bf16,       // vLLM Triton fallback: k'_d = bf16_RNE(fp32(k_d · s)),
                   //           logit = Σ_h w_h · relu(q_h·k')
};

inline const char* to_string(KScaleAt a) {
  switch (a) {
    case KScaleAt::after_head_sum: return "after_head_sum";
    case KScaleAt::per_head: return "per_head";
    case KScaleAt::on_k_bf16: return "on_k_bf16";
  }
  return "?";
}

namespace mqa_formula {

// relu that lets NaN through (a NaN operand of a visible position yields a NaN logit rather than
// being hidden as 0). relu(−0) = −0, which only matters to the sign of an all-zero sum.
template <class T>
DSA_HD constexpr T relu(T x) {
  return x < T(0) ? T(0) : x;
}

// The K operand of one dimension: the exactly decoded fp8 value `k_value`, or under on_k_bf16
// that value times the scale, in fp32, rounded to bf16 (RNE).
template <KScaleAt At>
DSA_HD inline float k_operand(float k_value, float scale) {
  if constexpr (At == KScaleAt::on_k_bf16) return round_to_bf16(k_value * scale);
  else return k_value;
}

// One head's contribution to the head sum, at precision T.
template <KScaleAt At, class T>
DSA_HD constexpr T head_term(T dot, T weight, T scale) {
  if constexpr (At == KScaleAt::per_head) return weight * relu(scale * dot);
  else return weight * relu(dot);
}

// The logit from the head sum.
template <KScaleAt At, class T>
DSA_HD constexpr T finish(T head_sum, T scale) {
  if constexpr (At == KScaleAt::after_head_sum) return scale * head_sum;
  else return head_sum;
}

}  // namespace mqa_formula
}  // namespace dsa
