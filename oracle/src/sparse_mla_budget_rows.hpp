// Private to oracle/src: the attention budget of BUDGETS.md §2 over a row-wise problem that both
// sparse_mla_decode and sparse_mla_prefill reduce to (each op's file says how its rows gather
// their valid operands).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dsa/judge.hpp"

namespace dsa::detail {

struct AttentionBudgetProblem {
  std::int64_t T = 0;  // query rows
  std::int32_t H = 0;
  int D_qk = 576;
  int D_v = 512;
  const std::uint16_t* q = nullptr;  // bf16 [T][H][D_qk]
  const float* sink = nullptr;       // [H] or null
  double sm_scale = 0.0;             // the effective fp32 scale, as gold uses it
  MlaConventions conv;
  // Appends the operands (reader model applied) of row r's valid slots, primary then extra, in
  // slot order, to `k` as [n][D_qk]; `token` is D_qk floats of scratch.
  std::function<void(std::int64_t r, std::vector<float>& token, std::vector<double>& k)> gather;
};

// Fills b.out, b.lse and b.max_logits (b.gold must already hold gold's outputs).
void attention_budget(const AttentionBudgetProblem& p, const KernelPrecision& k, const AttentionClaims& claims,
                      SparseMlaBudget& b);

// Judges a kernel's outputs against gold and budget. `row_names` / `row_extents` describe the
// [T][H] prefix of the outputs (decode: b, s, h; prefill: s, h).
CaseResult judge_attention(const SparseMlaBudget& b, const SparseMlaKernelOutputs& got, const JudgeOptions& options,
                           const std::vector<std::string>& row_names, const std::vector<std::int64_t>& row_extents);

}  // namespace dsa::detail
