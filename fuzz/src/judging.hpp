// Private to fuzz/: how the fuzzer judges attention outputs — the judge's verdict (judge.hpp),
// and, where it fails, the same comparison with one allowance the judge's budgets do not yet
// carry: gradual underflow (see judging.cpp). Everything else is the judge's, unchanged.
#pragma once

#include "dsa/fuzz_cases.hpp"
#include "dsa/judge.hpp"

namespace dsa::fuzz {

CaseResult judge_attention(const DecodeCase& c, const MlaOutputs& o, const JudgeOptions& options);
CaseResult judge_attention(const PrefillCase& c, const MlaOutputs& o, const JudgeOptions& options);

// The absolute underflow allowance of one attention output row (exposed for the tests).
double underflow_allowance(std::int64_t valid_slots, int num_splits, double max_abs_v);

}  // namespace dsa::fuzz
