// The fuzzer's attention judging: the judge's verdict on a fuzz case's parameters.
#include "judging.hpp"

namespace dsa::fuzz {

CaseResult judge_attention(const DecodeCase& c, const MlaOutputs& o, const JudgeOptions& options) {
  return judge_sparse_mla_decode(c.params(), o.judged(), options);
}

CaseResult judge_attention(const PrefillCase& c, const MlaOutputs& o, const JudgeOptions& options) {
  return judge_sparse_mla_prefill(c.params(), o.judged(), options);
}

}  // namespace dsa::fuzz
