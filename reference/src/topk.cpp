// Top-k of indexer logits (SPEC §6.4): reference selection and acceptance predicate.
#include "dsa/topk.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "dsa/error.hpp"
#include "indexer_validation.hpp"

namespace dsa {

namespace {

std::size_t idx(std::int64_t i) { return static_cast<std::size_t>(i); }

// Validates the arguments both entry points share.
void validate_rows(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                   std::span<const VisibleRange> ranges, std::int64_t k, std::size_t index_elements,
                   const char* index_name) {
  if (rows < 0) throw InvalidArgument("rows", fmt::format("must be ≥ 0 (got {})", rows));
  if (k < 0) throw InvalidArgument("k", fmt::format("must be ≥ 0 (got {})", k));
  if (row_stride < 0 || row_stride > std::numeric_limits<std::int32_t>::max())
    throw InvalidArgument("row_stride", fmt::format("must be in [0, 2^31) so positions fit int32 (got {})", row_stride));
  if (static_cast<std::int64_t>(ranges.size()) < rows)
    throw InvalidArgument("ranges", fmt::format("holds {} rows, needs {}", ranges.size(), rows));
  detail::require_elements(index_elements, {rows, k}, index_name, "rows·k");
  for (std::int64_t r = 0; r < rows; ++r) {
    const VisibleRange v = ranges[idx(r)];
    if (v.begin < 0 || v.end > row_stride || v.begin > v.end)
      throw InvalidArgument("ranges", fmt::format("row {} is [{}, {}): must satisfy 0 ≤ begin ≤ end ≤ row_stride = {}", r,
                                                  v.begin, v.end, row_stride));
    if (static_cast<std::int64_t>(logits.size()) < r * row_stride + v.end)
      throw InvalidArgument("logits", fmt::format("holds {} elements; row {} needs {}", logits.size(), r,
                                                  r * row_stride + v.end));
  }
}

// Strict total order of positions of one row: rank descending, then position ascending.
struct RanksBefore {
  const float* row;
  bool operator()(std::int32_t a, std::int32_t b) const {
    const int c = topk_compare_values(row[a], row[b]);
    return c > 0 || (c == 0 && a < b);
  }
};

}  // namespace

int topk_compare_values(float a, float b) {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  return a > b ? 1 : (a < b ? -1 : 0);
}

const char* to_string(TopkRule r) {
  switch (r) {
    case TopkRule::none: return "none";
    case TopkRule::masked_position: return "masked or out-of-range position";
    case TopkRule::duplicate: return "duplicate position";
    case TopkRule::wrong_count: return "wrong count";
    case TopkRule::wrong_padding: return "wrong −1 padding";
    case TopkRule::below_kth_largest: return "logit below the k-th largest";
    case TopkRule::missing_larger: return "missing strictly larger position";
    case TopkRule::order: return "order violation";
  }
  return "?";
}

void topk_indices(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                  std::span<const VisibleRange> ranges, std::int64_t k, std::span<std::int32_t> out) {
  validate_rows(logits, rows, row_stride, ranges, k, out.size(), "out");
#pragma omp parallel
  {
    std::vector<std::int32_t> cand;
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t r = 0; r < rows; ++r) {
      const VisibleRange v = ranges[idx(r)];
      cand.resize(idx(v.size()));
      for (std::int64_t t = v.begin; t < v.end; ++t) cand[idx(t - v.begin)] = static_cast<std::int32_t>(t);
      const RanksBefore before{logits.data() + r * row_stride};
      const auto m = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(k, v.size()));
      if (m < static_cast<std::ptrdiff_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + m - 1, cand.end(), before);
      std::sort(cand.begin(), cand.begin() + m, before);
      std::int32_t* dst = out.data() + r * k;
      std::copy(cand.begin(), cand.begin() + m, dst);
      std::fill(dst + m, dst + k, -1);
    }
  }
}

TopkVerdict check_topk(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                       std::span<const VisibleRange> ranges, std::int64_t k, std::span<const std::int32_t> indices,
                       const TopkCheckOptions& options) {
  validate_rows(logits, rows, row_stride, ranges, k, indices.size(), "indices");
  std::vector<std::int64_t> first_slot;  // per visible position: 1 + the slot holding it, 0 if none
  std::vector<float> values;
  for (std::int64_t r = 0; r < rows; ++r) {
    const VisibleRange v = ranges[idx(r)];
    const float* row = logits.data() + r * row_stride;
    const std::int32_t* sel = indices.data() + r * k;
    const std::int64_t m = std::min<std::int64_t>(k, v.size());
    auto reject = [&](TopkRule rule, std::int64_t slot, const std::string& detail) {
      TopkVerdict out;
      out.accepted = false;
      out.rule = rule;
      out.row = r;
      out.slot = slot;
      out.reason = slot >= 0 ? fmt::format("row {} slot {}: {}: {}", r, slot, to_string(rule), detail)
                             : fmt::format("row {}: {}: {}", r, to_string(rule), detail);
      return out;
    };

    // Set rules: slots [0, m) distinct visible positions, slots [m, k) −1.
    first_slot.assign(idx(v.size()), 0);
    std::int64_t count = 0;
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int32_t p = sel[j];
      if (p == -1) continue;
      if (j >= m)
        return reject(TopkRule::wrong_padding, j,
                      fmt::format("holds {}, but the row has {} visible positions, so slots [{}, {}) must hold −1", p,
                                  v.size(), m, k));
      if (!v.contains(p))
        return reject(TopkRule::masked_position, j, fmt::format("position {} is outside the visible range [{}, {})", p, v.begin, v.end));
      auto& first = first_slot[idx(p - v.begin)];
      if (first != 0)
        return reject(TopkRule::duplicate, j, fmt::format("position {} already appears in slot {}", p, first - 1));
      first = j + 1;
      ++count;
    }
    // Every position sits in a slot below m, so a −1 among them means fewer than m positions.
    if (count < m)
      return reject(TopkRule::wrong_count, -1,
                    fmt::format("{} positions, expected min(k = {}, |visible| = {}) = {}", count, k, v.size(), m));
    if (m == 0) continue;

    // Value rules against T, the m-th largest visible logit.
    values.assign(row + v.begin, row + v.end);
    std::nth_element(values.begin(), values.begin() + (m - 1), values.end(),
                     [](float a, float b) { return topk_compare_values(a, b) > 0; });
    const float kth = values[idx(m - 1)];
    for (std::int64_t j = 0; j < m; ++j)
      if (topk_compare_values(row[sel[j]], kth) < 0)
        return reject(TopkRule::below_kth_largest, j,
                      fmt::format("position {} has logit {}, below the k-th largest {}", sel[j], row[sel[j]], kth));
    for (std::int64_t t = v.begin; t < v.end; ++t)
      if (first_slot[idx(t - v.begin)] == 0 && topk_compare_values(row[t], kth) > 0)
        return reject(TopkRule::missing_larger, -1,
                      fmt::format("position {} with logit {} > the k-th largest {} is not selected", t, row[t], kth));
    if (options.require_stable_order) {
      const RanksBefore before{row};
      for (std::int64_t j = 1; j < m; ++j)
        if (!before(sel[j - 1], sel[j]))
          return reject(TopkRule::order, j,
                        fmt::format("position {} (logit {}) follows position {} (logit {}); stable order is logit "
                                    "descending, position ascending",
                                    sel[j], row[sel[j]], sel[j - 1], row[sel[j - 1]]));
    }
  }
  return {};
}

}  // namespace dsa
