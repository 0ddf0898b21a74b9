// Private to fuzz/: how the fuzzer judges attention outputs — the judge's verdict (judge.hpp) on
// the case's parameters. (The underflow allowance the fuzzer once added here is BUDGETS.md eq. 2.11.)
#pragma once

#include "dsa/fuzz_cases.hpp"
#include "dsa/judge.hpp"

namespace dsa::fuzz {

CaseResult judge_attention(const DecodeCase& c, const MlaOutputs& o, const JudgeOptions& options);
CaseResult judge_attention(const PrefillCase& c, const MlaOutputs& o, const JudgeOptions& options);

}  // namespace dsa::fuzz
