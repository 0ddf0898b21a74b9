// Element-wise judging against per-element budgets (SPEC §10).
#include "dsa/compare.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "dsa/error.hpp"
#include "dsa/formats.hpp"

namespace dsa {

std::int64_t TensorShape::numel() const {
  std::int64_t n = 1;
  for (auto e : extents) n *= e;
  return n;
}

std::string TensorShape::coordinate(std::int64_t flat) const {
  if (flat < 0) return "[]";
  std::vector<std::int64_t> idx(extents.size());
  for (std::size_t k = extents.size(); k-- > 0;) {
    const std::int64_t e = extents[k] > 0 ? extents[k] : 1;
    idx[k] = flat % e;
    flat /= e;
  }
  std::string s = "[";
  for (std::size_t k = 0; k < idx.size(); ++k) {
    if (k) s += ",";
    s += (k < names.size() ? names[k] : fmt::format("d{}", k)) + "=" + std::to_string(idx[k]);
  }
  return s + "]";
}

double bf16_ulp_distance(double a, double b) {
  auto ordered = [](double x) -> std::int64_t {
    const std::uint16_t c = f32_to_bf16(static_cast<float>(x));
    const std::int64_t mag = c & 0x7FFF;
    return (c & 0x8000) ? -mag : mag;
  };
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0.0 : INFINITY;
  return static_cast<double>(std::llabs(ordered(a) - ordered(b)));
}

const char* RatioHistogram::label(int b) {
  static const char* labels[kBuckets] = {"<1/64", "1/64-1/16", "1/16-1/4", "1/4-1/2", "1/2-1", "1-2 FAIL", ">2 FAIL"};
  return labels[b];
}

void RatioHistogram::add(double r) {
  int b;
  if (!(r <= 2.0)) b = 6;  // also NaN
  else if (r > 1.0) b = 5;
  else if (r >= 0.5) b = 4;
  else if (r >= 0.25) b = 3;
  else if (r >= 1.0 / 16) b = 2;
  else if (r >= 1.0 / 64) b = 1;
  else b = 0;
  ++counts[b];
}

void RatioHistogram::merge(const RatioHistogram& o) {
  for (int b = 0; b < kBuckets; ++b) counts[b] += o.counts[b];
}

Comparison compare(std::span<const double> got, std::span<const double> want, std::span<const double> budget,
                   const TensorShape& shape, const CompareOptions& options) {
  const std::size_t n = want.size();
  if (got.size() != n) throw InvalidArgument("got", fmt::format("has {} elements, want has {}", got.size(), n));
  if (budget.size() != n) throw InvalidArgument("budget", fmt::format("has {} elements, want has {}", budget.size(), n));
  if (static_cast<std::size_t>(shape.numel()) != n)
    throw InvalidArgument("shape", fmt::format("describes {} elements, want has {}", shape.numel(), n));
  if (!options.skip_mask.empty() && options.skip_mask.size() != n)
    throw InvalidArgument("options.skip_mask", fmt::format("has {} entries for {} elements", options.skip_mask.size(), n));
  if (!options.unwritten_mask.empty() && options.unwritten_mask.size() != n)
    throw InvalidArgument("options.unwritten_mask",
                          fmt::format("has {} entries for {} elements", options.unwritten_mask.size(), n));
  // A signalling NaN does not survive float → double → float: its quiet twin stands for it.
  std::uint32_t sentinel = 0, sentinel_quiet = 0;
  if (options.sentinel_f32_bits) {
    sentinel = *options.sentinel_f32_bits;
    sentinel_quiet = (sentinel & 0x7F800000u) == 0x7F800000u && (sentinel & 0x007FFFFFu) != 0 ? sentinel | 0x00400000u
                                                                                              : sentinel;
  }

  Comparison c;
  double sxy = 0.0, sxx_yy = 0.0;
  auto fail = [&](std::size_t i, std::string why) {
    ++c.failures;
    if (c.pass) {
      c.pass = false;
      c.failure = fmt::format("{} at {}", why, shape.coordinate(static_cast<std::int64_t>(i)));
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (!options.skip_mask.empty() && options.skip_mask[i]) continue;
    ++c.elements;
    const double g = got[i], w = want[i];
    bool unwritten = !options.unwritten_mask.empty() && options.unwritten_mask[i];
    if (!unwritten && options.sentinel_f32_bits) {
      const float gf = static_cast<float>(g);
      std::uint32_t bits;
      std::memcpy(&bits, &gf, 4);
      unwritten = bits == sentinel || bits == sentinel_quiet;
    }
    if (unwritten) {
      ++c.unwritten;
      fail(i, "unwritten output (still holds the sentinel)");
      continue;
    }
    const bool gf = std::isfinite(g), wf = std::isfinite(w);
    if (!gf || !wf) {
      const bool same = (std::isnan(g) && std::isnan(w)) || (!std::isnan(g) && !std::isnan(w) && g == w);
      if (!same) {
        ++c.nonfinite_mismatches;
        fail(i, fmt::format("non-finite mismatch: got {} want {}", g, w));
      }
      continue;
    }
    const double err = std::fabs(g - w);
    const double b = budget[i];
    const double ratio = err == 0.0 ? 0.0 : (b > 0.0 ? err / b : INFINITY);
    if (ratio > c.worst_ratio || c.worst_index < 0) {
      c.worst_ratio = ratio;
      c.worst_index = static_cast<std::int64_t>(i);
      c.worst_got = g;
      c.worst_want = w;
      c.worst_budget = b;
    }
    if (ratio > 1.0) fail(i, fmt::format("error {:.3e} exceeds budget {:.3e} (ratio {:.3g}): got {} want {}", err, b, ratio, g, w));
    c.max_abs = std::max(c.max_abs, err);
    if (w != 0.0) c.max_rel = std::max(c.max_rel, err / std::fabs(w));
    c.max_bf16_ulp = std::max(c.max_bf16_ulp, bf16_ulp_distance(g, w));
    sxy += g * w;
    sxx_yy += g * g + w * w;
  }
  c.cos_diff = sxx_yy > 0.0 ? 1.0 - 2.0 * sxy / sxx_yy : 0.0;
  if (c.worst_index >= 0) c.worst_coordinate = shape.coordinate(c.worst_index);
  return c;
}

}  // namespace dsa
