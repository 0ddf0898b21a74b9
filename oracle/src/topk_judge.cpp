// topk (SPEC §6.4): judged exactly by the acceptance predicate check_topk. The verdict is one
// output, "indices", whose coordinate is the first rejected (row, slot).
#include <fmt/format.h>

#include <limits>

#include "dsa/error.hpp"
#include "dsa/judge.hpp"

namespace dsa {

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
    c.failure = fmt::format("{} ({}) at {}", to_string(v.rule), v.reason, c.worst_coordinate);
  }
  // Exact: every slot is a ratio of 0, the first rejected one (if any) a failure.
  const std::int64_t failed = v.accepted ? 0 : 1;
  for (std::int64_t i = failed; i < c.elements; ++i) res.histogram.add(0.0);
  if (failed) res.histogram.add(std::numeric_limits<double>::infinity());
  res.outputs.push_back({"indices", c});
  return res;
}

}  // namespace dsa
