// Properties of the lightning indexer (SPEC §6.2–§6.4, §11): paged and non-paged logits within
// budget under the kernel's write contract, determinism, relabelling, standard ≡ preshuffle,
// power-of-two scale doubling, layout-tag mismatch rejected; top-k by the acceptance predicate.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "dsa/error.hpp"
#include "dsa/layouts.hpp"
#include "dsa/properties.hpp"

namespace dsa::fuzz {

namespace {

using Rng = std::mt19937_64;
std::size_t sz(std::int64_t n) { return static_cast<std::size_t>(n); }
float sentinel() { return f32_from_bits(kSentinelF32); }

std::string first_failure(const CaseResult& r) {
  if (!r.error.empty()) return r.error;
  for (const auto& o : r.outputs)
    if (!o.cmp.pass)
      return fmt::format("{}: {} (worst ratio {:.3g} at {}: got {} want {} budget {:.3g}; {} of {} elements fail)",
                         o.name, o.cmp.failure, o.cmp.worst_ratio, o.cmp.worst_coordinate, o.cmp.worst_got,
                         o.cmp.worst_want, o.cmp.worst_budget, o.cmp.failures, o.cmp.elements);
  return "";
}

std::string first_bit_difference(const std::vector<float>& a, const std::vector<float>& b, std::int64_t row_stride,
                                 const char* what) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (f32_bits(a[i]) != f32_bits(b[i]))
      return fmt::format("{}: logits[{}][{}] = {} vs {}", what, i / sz(row_stride), i % sz(row_stride), a[i], b[i]);
  return "";
}

// Positions [width, row_stride) of each row must still hold the sentinel.
std::string padding_untouched(const std::vector<float>& logits, std::int64_t rows, std::int64_t width,
                              std::int64_t row_stride) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = width; t < row_stride; ++t) {
      const float x = logits[sz(r * row_stride + t)];
      if (f32_bits(x) != kSentinelF32)
        return fmt::format("logits[{}][{}] lies past the logits width {} but was written ({})", r, t, width, x);
    }
  return "";
}

// SPEC §11 E: every finite defined logit doubles exactly (away from overflow and underflow).
std::string doubled(const std::vector<float>& base, const std::vector<float>& twice, std::int64_t rows,
                    std::int64_t width, std::int64_t row_stride, const std::vector<VisibleRange>& ranges,
                    WriteContract contract, std::int64_t page) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = 0; t < width; ++t) {
      if (!write_contract_defines(contract, ranges[sz(r)], t, width, page)) continue;
      const float a = base[sz(r * row_stride + t)], b = twice[sz(r * row_stride + t)];
      if (!std::isfinite(a)) {
        if (f32_bits(a) != f32_bits(b) && !(std::isnan(a) && std::isnan(b)))
          return fmt::format("logits[{}][{}] = {} but {} with doubled scales", r, t, a, b);
        continue;
      }
      if (std::fabs(a) >= 0x1p126f || std::fabs(a) < 0x1p-100f) continue;  // overflow / gradual underflow
      if (b != 2.0f * a)
        return fmt::format("logits[{}][{}] = {} ({:a}) but {} ({:a}) with doubled scales, not exactly twice", r, t,
                           a, a, b, b);
    }
  return "";
}

class PagedChecker {
 public:
  PagedChecker(const KernelUnderTest& k, const PagedLogitsCase& c) : k_(k), c_(c), ctx_(run_context(k, 1)) {}

  Verdict run(const std::string& property) {
    return run_selected(k_, property, v_, [this](const std::string& name) { return one(name); });
  }

 private:
  const KernelUnderTest& k_;
  const PagedLogitsCase& c_;
  RunContext ctx_;
  Verdict v_;
  std::optional<std::vector<float>> base_;
  std::string base_error_;

  std::vector<float> fresh(const PagedLogitsCase& c) const {
    return std::vector<float>(sz(std::max<std::int64_t>(c.rows(), 1) * std::max<std::int64_t>(c.row_stride, 1)),
                              sentinel());
  }
  std::string call(const PagedLogitsCase& c, std::vector<float>& logits, IndexKLayout* reader = nullptr) const {
    try {
      PagedMqaLogitsParams p = c.params(logits);
      if (reader) p.reader_layout = *reader;
      k_.paged_logits(p, ctx_);
    } catch (const std::exception& e) {
      return fmt::format("the kernel threw on a valid case: {}", e.what());
    }
    return "";
  }
  const std::vector<float>& base() {
    if (!base_) {
      base_.emplace(fresh(c_));
      base_error_ = call(c_, *base_);
    }
    return *base_;
  }

  std::string one(const std::string& name) {
    if (!k_.paged_logits) return k_.name + " has no paged_mqa_logits entry point";
    if (name == "layout_mismatch") return mismatch();
    const auto& b = base();
    if (!base_error_.empty()) return base_error_;
    if (name == "budget") {
      std::vector<float> logits = b;
      CaseResult r = judge_paged_mqa_logits(c_.params(logits), b, c_.row_stride, k_.judge_options(ctx_));
      r.variant = k_.name;
      r.profile = k_.profile.name;
      r.seed = c_.seed;
      const std::string f = first_failure(r);
      v_.judged.push_back(std::move(r));
      if (!f.empty()) return f;
      return padding_untouched(b, c_.rows(), c_.max_ctx, c_.row_stride);
    }
    if (name == "determinism") return again(c_, "a rerun differs");
    if (name == "relabel") return again(relabel(), "after relabelling the physical blocks");
    if (name == "layout_pair") {
      const auto& g = c_.cache.geo;
      if (g.page_tokens % 16 != 0 || g.head_dim % 16 != 0) return "";  // preshuffle cannot hold it
      return again(transcoded(), "standard vs preshuffle");
    }
    if (name == "scale_doubling") {
      PagedLogitsCase c = c_;
      const auto& g = c.cache.geo;
      for (std::int64_t blk = 0; blk < g.num_blocks; ++blk)
        for (std::int64_t t = 0; t < g.page_tokens; ++t) {
          std::uint8_t* s = c.cache.bytes.data() + blk * g.block_stride_bytes +
                            layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t);
          store_f32(s, 2.0f * load_f32(s));
        }
      std::vector<float> twice = fresh(c);
      if (auto e = call(c, twice); !e.empty()) return e;
      std::vector<float> tmp = b;
      const auto ranges = visible_ranges(c_.params(tmp));
      return doubled(b, twice, c_.rows(), c_.max_ctx, c_.row_stride, ranges, k_.write_contract, g.page_tokens);
    }
    return "";
  }

  std::string again(const PagedLogitsCase& c, const char* what) {
    std::vector<float> o = fresh(c);
    if (auto e = call(c, o); !e.empty()) return e;
    return first_bit_difference(*base_, o, c_.row_stride, what);
  }

  PagedLogitsCase relabel() const {
    PagedLogitsCase c = c_;
    const auto& g = c.cache.geo;
    if (g.num_blocks < 2) return c;
    Rng rng(c.seed ^ 0x5E1AB);
    std::vector<std::int64_t> perm(sz(g.num_blocks));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    IndexKCacheBuffer moved(g);
    std::fill(moved.bytes.begin(), moved.bytes.end(), std::uint8_t{0xFF});
    for (std::int64_t blk = 0; blk < g.num_blocks; ++blk)
      std::copy_n(c_.cache.bytes.begin() + blk * g.block_stride_bytes, g.page_bytes(),
                  moved.bytes.begin() + perm[sz(blk)] * g.block_stride_bytes);
    c.cache = std::move(moved);
    for (auto& e : c.block_table)
      if (e >= 0 && e < g.num_blocks) e = static_cast<std::int32_t>(perm[sz(e)]);
    return c;
  }

  PagedLogitsCase transcoded() const {
    PagedLogitsCase c = c_;
    IndexKGeometry g = c_.cache.geo;
    g.layout = g.layout == IndexKLayout::standard ? IndexKLayout::preshuffle : IndexKLayout::standard;
    IndexKCacheBuffer other(g);
    transcode_index_k(c_.cache.view(), other.span());
    c.cache = std::move(other);
    return c;
  }

  std::string mismatch() {
    const IndexKLayout other =
        c_.cache.geo.layout == IndexKLayout::standard ? IndexKLayout::preshuffle : IndexKLayout::standard;
    std::vector<float> o = fresh(c_);
    IndexKLayout reader = other;
    try {
      PagedMqaLogitsParams p = c_.params(o);
      p.reader_layout = reader;
      k_.paged_logits(p, ctx_);
    } catch (const InvalidArgument&) {
      for (std::size_t i = 0; i < o.size(); ++i)
        if (f32_bits(o[i]) != kSentinelF32)
          return fmt::format("rejected the layout mismatch but wrote logits[{}] first", i);
      return "";
    } catch (const std::exception& e) {
      return fmt::format("a layout mismatch must be dsa::InvalidArgument, got: {}", e.what());
    }
    return fmt::format("a {} cache read by a {} reader was not rejected", to_string(c_.cache.geo.layout),
                       to_string(other));
  }
};

class MqaChecker {
 public:
  MqaChecker(const KernelUnderTest& k, const MqaLogitsCase& c) : k_(k), c_(c), ctx_(run_context(k, 1)) {}

  Verdict run(const std::string& property) {
    return run_selected(k_, property, v_, [this](const std::string& name) { return one(name); });
  }

 private:
  const KernelUnderTest& k_;
  const MqaLogitsCase& c_;
  RunContext ctx_;
  Verdict v_;
  std::optional<std::vector<float>> base_;
  std::string base_error_;

  std::vector<float> fresh() const {
    return std::vector<float>(sz(std::max<std::int64_t>(c_.rows(), 1) * std::max<std::int64_t>(c_.row_stride, 1)),
                              sentinel());
  }
  std::string call(const MqaLogitsCase& c, std::vector<float>& logits) const {
    try {
      k_.logits(c.params(logits), ctx_);
    } catch (const std::exception& e) {
      return fmt::format("the kernel threw on a valid case: {}", e.what());
    }
    return "";
  }

  std::string one(const std::string& name) {
    if (!k_.logits) return k_.name + " has no mqa_logits entry point";
    if (!base_) {
      base_.emplace(fresh());
      base_error_ = call(c_, *base_);
    }
    if (!base_error_.empty()) return base_error_;
    const auto& b = *base_;
    if (name == "budget") {
      std::vector<float> tmp = b;
      CaseResult r = judge_mqa_logits(c_.params(tmp), b, c_.row_stride, k_.judge_options(ctx_));
      r.variant = k_.name;
      r.profile = k_.profile.name;
      r.seed = c_.seed;
      const std::string f = first_failure(r);
      v_.judged.push_back(std::move(r));
      if (!f.empty()) return f;
      return padding_untouched(b, c_.rows(), c_.S_kv, c_.row_stride);
    }
    if (name == "determinism") {
      std::vector<float> o = fresh();
      if (auto e = call(c_, o); !e.empty()) return e;
      return first_bit_difference(b, o, c_.row_stride, "a rerun differs");
    }
    if (name == "scale_doubling") {
      MqaLogitsCase c = c_;
      for (auto& s : c.k_scales) s *= 2.0f;
      std::vector<float> o = fresh();
      if (auto e = call(c, o); !e.empty()) return e;
      std::vector<float> tmp = b;
      const auto ranges = visible_ranges(c_.params(tmp));
      return doubled(b, o, c_.rows(), c_.S_kv, c_.row_stride, ranges, k_.write_contract, 64);
    }
    return "";
  }
};

class TopkChecker {
 public:
  TopkChecker(const KernelUnderTest& k, const TopkCase& c) : k_(k), c_(c), ctx_(run_context(k, 1)) {}

  Verdict run(const std::string& property) {
    return run_selected(k_, property, v_, [this](const std::string& name) { return one(name); });
  }

 private:
  static constexpr std::int32_t kSentinelIndex = 0x7FA5A5A5;
  const KernelUnderTest& k_;
  const TopkCase& c_;
  RunContext ctx_;
  Verdict v_;
  std::optional<std::vector<std::int32_t>> base_;
  std::string base_error_;

  std::string call(std::vector<std::int32_t>& out) const {
    out.assign(sz(c_.rows * c_.k), kSentinelIndex);
    try {
      k_.topk(c_.logits, c_.rows, c_.row_stride, c_.ranges, c_.k, out, ctx_);
    } catch (const std::exception& e) {
      return fmt::format("the kernel threw on a valid case: {}", e.what());
    }
    return "";
  }

  std::string one(const std::string& name) {
    if (!k_.topk) return k_.name + " has no topk entry point";
    if (!base_) {
      base_.emplace();
      base_error_ = call(*base_);
    }
    if (!base_error_.empty()) return base_error_;
    if (name == "predicate") {
      CaseResult r = judge_topk(c_.logits, c_.rows, c_.row_stride, c_.ranges, c_.k, *base_, k_.judge_options(ctx_));
      r.variant = k_.name;
      r.profile = k_.profile.name;
      r.seed = c_.seed;
      const std::string f = first_failure(r);
      v_.judged.push_back(std::move(r));
      return f;
    }
    if (name == "determinism") {
      std::vector<std::int32_t> o;
      if (auto e = call(o); !e.empty()) return e;
      for (std::size_t i = 0; i < o.size(); ++i)
        if (o[i] != (*base_)[i])
          return fmt::format("a rerun differs: out[{}][{}] = {} vs {}", i / sz(c_.k), i % sz(c_.k), (*base_)[i], o[i]);
    }
    return "";
  }
};

}  // namespace

Verdict check(const KernelUnderTest& k, const PagedLogitsCase& c, const std::string& property) {
  return PagedChecker(k, c).run(property);
}
Verdict check(const KernelUnderTest& k, const MqaLogitsCase& c, const std::string& property) {
  return MqaChecker(k, c).run(property);
}
Verdict check(const KernelUnderTest& k, const TopkCase& c, const std::string& property) {
  return TopkChecker(k, c).run(property);
}

}  // namespace dsa::fuzz
