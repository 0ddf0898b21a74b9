// Interim per-element error bound for judging the fast fp32 sparse MLA paths against gold, until
// the judging issue's full budgets (oracle/) replace it. Everything interim lives in this file
// and sparse_mla_interim_bound.cpp; the derivation is in the comment of the .cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "dsa/sparse_mla.hpp"

namespace dsa {

// What gold knows about each element's inputs (filled by sparse_mla_*_gold(params, &stats)).
// p_j = exp(z_j − lse) are gold's fp64 weights over the valid slots U of the row, before the sink.
struct SparseMlaGoldStats {
  std::int64_t T = 0;
  std::int32_t H = 0;
  int D_qk = 576;
  int D_v = 512;
  std::vector<std::int32_t> valid_slots;  // [T] |U|
  std::vector<double> lse_nat;            // [T][H] ln Σ_U exp z_j (no sink; −inf if U is empty)
  std::vector<double> max_abs_dot;        // [T][H] max_j sm_scale·Σ_d |q_d|·|k_jd|
  std::vector<double> logit_range;        // [T][H] max_j z_j − min_j z_j
  std::vector<double> sink_factor;        // [T][H] 1 / (1 + exp(sink − lse)); 1 without a sink
  std::vector<double> abs_v;              // [T][H][D_v] Σ_j p_j·|v_jd|
  std::vector<double> dev_v;              // [T][H][D_v] Σ_j p_j·|v_jd − o_d| (o before the sink)
};

// Bounds on |fast − gold| per element, fast's outputs read as numbers (bf16 out, fp32 lse and
// max_logits) and gold's fp64 values. `num_splits` is the split count fast ran with; the key
// tile width is kMlaTileSlots. Non-finite gold elements get bound 0 (they must match exactly).
struct SparseMlaBound {
  std::vector<double> out;         // [T][H][D_v]
  std::vector<double> lse;         // [T][H]
  std::vector<double> max_logits;  // [T][H]
};
SparseMlaBound sparse_mla_interim_bound(const SparseMlaGold& gold, const SparseMlaGoldStats& stats,
                                        const MlaConventions& conventions, int num_splits);

// The relative accuracy of the fp32 exp and log that fast uses, in units of 2^−24; a test
// measures the exp and log implementations against fp64 and checks these.
inline constexpr double kFastExpUlps = 4.0;
inline constexpr double kFastLogUlps = 4.0;

}  // namespace dsa
