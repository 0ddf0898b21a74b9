// Private to oracle/src: the indexer-logit budget of BUDGETS.md §3 over a row-wise problem that
// paged_mqa_logits and mqa_logits both reduce to (each op's file says how a row reads key t).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dsa/judge.hpp"

namespace dsa::detail {

struct LogitsBudgetProblem {
  std::int64_t rows = 0, heads = 0, dim = 0, width = 0;
  const std::uint8_t* q = nullptr;  // fp8 codes [rows][H][D]
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  const float* weights = nullptr;   // [rows][H]
  KScaleAt k_scale_at = KScaleAt::after_head_sum;
  // Writes the D exactly decoded K values of position t as row r sees it, returns its scale s_K.
  std::function<float(std::int64_t r, std::int64_t t, float* k_values)> read_token;
};

// Fills gold and budget ([rows][width]); b.ranges must hold every row's visible range.
void logits_budget(const LogitsBudgetProblem& p, const KernelPrecision& k, LogitsBudget& b);

// Judges logits [rows][row_stride] on positions [0, width) of each row that the write contract
// defines; `names` names the row dims (their extents multiply to rows) and then "t".
CaseResult judge_logits(const LogitsBudget& b, std::span<const float> logits, std::int64_t row_stride,
                        const JudgeOptions& options, std::int64_t contract_page_tokens,
                        const std::vector<std::string>& names, const std::vector<std::int64_t>& row_extents);

}  // namespace dsa::detail
