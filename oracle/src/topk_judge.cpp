// topk (SPEC §6.4): judged exactly by the acceptance predicate check_topk. The verdict is one
// output, "indices", whose coordinate is the first rejected (row, slot).
#include <fmt/format.h>

#include <limits>

#include "dsa/error.hpp"
#include "dsa/judge.hpp"

namespace dsa {

namespace {

// The rule's name as SPEC §6.4 and TopkRule spell it, so reports and scripts can match on it.
const char* rule_name(TopkRule r) {
  switch (r) {
    case TopkRule::none: return "none";
    case TopkRule::masked_position: return "masked_position";
    case TopkRule::duplicate: return "duplicate";
    case TopkRule::wrong_count: return "wrong_count";
    case TopkRule::wrong_padding: return "wrong_padding";
    case TopkRule::below_kth_largest: return "below_kth_largest";
    case TopkRule::missing_larger: return "missing_larger";
    case TopkRule::order: return "order";
  }
  return "?";
}

}  // namespace

CaseResult judge_topk(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                      std::span<const VisibleRange> ranges, std::int64_t k, std::span<const std::int32_t> indices,
                      const JudgeOptions& options) {
  TopkCheckOptions to;
  to.require_stable_order = options.topk_stable_order;
  const TopkVerdict v = check_topk(logits, rows, row_stride, ranges, k, indices, to);
  CaseResult res;
  res.op = to_string(Op::topk);
  res.layout = "dense";
  res.shape = fmt::format("rows={} width={} k={}", rows, row_stride, k);
  Comparison c;
  c.elements = rows * k;
  if (!v.accepted) {
    const TensorShape shape{{"row", "slot"}, {rows, k}};
    const std::int64_t slot = v.slot >= 0 ? v.slot : 0;
    c.pass = false;
    c.failures = 1;
    c.worst_ratio = std::numeric_limits<double>::infinity();
    c.worst_index = v.row * k + slot;
    c.worst_coordinate = v.slot >= 0 ? shape.coordinate(c.worst_index) : fmt::format("[row={}]", v.row);
    c.failure = fmt::format("top-k rule {} violated at {}: {}", rule_name(v.rule), c.worst_coordinate, v.reason);
  }
  // Exact: every slot is a ratio of 0, the first rejected one (if any) a failure.
  const std::int64_t failed = v.accepted ? 0 : 1;
  for (std::int64_t i = failed; i < c.elements; ++i) res.histogram.add(0.0);
  if (failed) res.histogram.add(std::numeric_limits<double>::infinity());
  res.outputs.push_back({"indices", c});
  return res;
}

}  // namespace dsa
