// Comparison rules of SPEC §10: non-finite positions first, then error / budget per element,
// sentinel (unwritten output) detection, and the familiar metrics reported beside the verdict.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dsa {

// Names and extents of a tensor's dimensions, for reporting coordinates ("[b=1,s=0,h=5,d=100]").
struct TensorShape {
  std::vector<std::string> names;
  std::vector<std::int64_t> extents;
  std::int64_t numel() const;
  std::string coordinate(std::int64_t flat_index) const;
};

struct CompareOptions {
  // Bit pattern of the fp32 sentinel the output buffer was filled with before the kernel ran;
  // an element that still holds it was never written. For bf16 outputs, compare the widened
  // sentinel (bf16 code << 16). A signalling-NaN sentinel is quieted by the conversion to double,
  // so its quiet twin (bits | 0x00400000) counts too. Callers that hold the raw output bits
  // should rather pass `unwritten_mask`, which is exact.
  std::optional<std::uint32_t> sentinel_f32_bits;
  // Elements found still holding the sentinel on the raw output bits: 1 = unwritten. Empty = none.
  std::span<const std::uint8_t> unwritten_mask;
  // Elements the kernel promised not to define (write contracts): skipped entirely.
  std::span<const std::uint8_t> skip_mask;  // 1 = skip; empty = compare all
};

struct Comparison {
  bool pass = true;
  std::string failure;                // first rule violated, with its coordinate; empty on pass
  std::int64_t elements = 0;          // elements compared
  std::int64_t failures = 0;          // elements with ratio > 1 or a non-finite mismatch
  std::int64_t nonfinite_mismatches = 0;
  std::int64_t unwritten = 0;         // elements still holding the sentinel
  // The worst element by error / budget.
  double worst_ratio = 0.0;
  std::int64_t worst_index = -1;
  std::string worst_coordinate;
  double worst_got = 0.0, worst_want = 0.0, worst_budget = 0.0;
  // Familiar metrics over the finite, compared elements (FlashMLA / DeepGEMM style).
  double max_abs = 0.0;
  double max_rel = 0.0;     // |got − want| / |want| over want ≠ 0
  double max_bf16_ulp = 0;  // distance between bf16 roundings, in bf16 units in the last place
  double cos_diff = 0.0;    // 1 − 2Σxy / Σ(x² + y²)
};

// Judges `got` against `want` with a per-element `budget` (all of one shape). Rules, in order:
// 1. an element holding the sentinel is unwritten → fail;
// 2. +inf, −inf and NaN must sit at exactly the same positions in got and want → else fail;
// 3. finite elements: ratio = |got − want| / budget; ratio > 1 → fail (budget 0 admits only an
//    exact match).
// All failing elements are counted; the first rule broken (in element order) is reported.
Comparison compare(std::span<const double> got, std::span<const double> want, std::span<const double> budget,
                   const TensorShape& shape, const CompareOptions& options = {});

// Distance between two values after rounding each to bf16, in bf16 ulps (ordered-integer
// difference; 0 for equal values, counts across zero).
double bf16_ulp_distance(double a, double b);

// Histogram of error/budget ratios in fixed buckets: [0,1/64), [1/64,1/16), [1/16,1/4),
// [1/4,1/2), [1/2,1], (1,2], (2,∞). Reports show it to tell a tight budget from a loose one.
struct RatioHistogram {
  static constexpr int kBuckets = 7;
  static const char* label(int bucket);
  std::int64_t counts[kBuckets] = {};
  void add(double ratio);
  void merge(const RatioHistogram& other);
};

}  // namespace dsa
