// Test helpers for the sparse MLA suites: owning decode cases, seeded random fills, poisoning of
// unreferenced cache rows, sentinel-filled outputs, a RapidCheck generator of case specs and the
// comparison of fast against gold under the interim bound. Poisoning is dsa::poison_mla_token.
#pragma once

#include <fmt/format.h>
#include <rapidcheck.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/formats.hpp"
#include "dsa/layouts.hpp"
#include "dsa/quantize.hpp"
#include "dsa/sparse_mla.hpp"
#include "dsa/sparse_mla_case.hpp"
#include "dsa/sparse_mla_interim_bound.hpp"

namespace dsa::test {

// Index values that must be invalid whatever the cache: every test mixes them in.
inline std::vector<std::int32_t> nasty_invalid_indices(std::int64_t capacity) {
  std::vector<std::int32_t> v = {-1, INT_MIN, INT_MIN + 1, -123456, INT_MAX, -2};
  if (capacity < INT_MAX) v.push_back(static_cast<std::int32_t>(capacity));
  if (capacity + 1 < INT_MAX) v.push_back(static_cast<std::int32_t>(capacity + 1));
  return v;
}

inline std::vector<float> random_rows(std::int64_t n, int dim, std::uint64_t seed, float amp = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<float> x(static_cast<std::size_t>(n * dim));
  for (auto& v : x) v = u(rng);
  return x;
}

inline std::vector<std::uint16_t> random_bf16(std::int64_t n, std::uint64_t seed, float amp = 1.0f) {
  std::vector<float> x = random_rows(n, 1, seed, amp);
  std::vector<std::uint16_t> c(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) c[i] = f32_to_bf16(x[i]);
  return c;
}

// Every token of the cache written by quantize_kv from random rows (amplitude varies per token so
// that the scales differ).
inline void fill_random(MlaCacheBuffer& c, std::uint64_t seed, ScalePolicy policy = ScalePolicy::pow2_ceil) {
  const std::int64_t n = c.geo.capacity_tokens();
  const int D = c.geo.dim_qk();
  std::vector<float> rows = random_rows(n, D, seed);
  std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ull);
  std::uniform_real_distribution<float> amp(0.05f, 4.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    const float a = amp(rng);
    for (int d = 0; d < D; ++d) rows[static_cast<std::size_t>(i * D + d)] *= a;
  }
  std::vector<std::int64_t> slots(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) slots[static_cast<std::size_t>(i)] = i;
  MlaQuantParams qp;
  qp.policy = c.geo.layout == MlaLayout::V32 ? policy : ScalePolicy::pow2_ceil;
  quantize_kv(rows, n, D, slots, c.span(), qp);
}

// A decode problem that owns its tensors; params() views them.
using DecodeCase = SparseMlaDecodeCase;

// The tokens a case's valid slots name, derived here independently of the library (SPEC §3).
inline std::set<std::pair<std::int64_t, std::int32_t>> referenced_tokens(
    const MlaCacheGeometry& g, IndexMode mode, const std::vector<std::int32_t>& block_table, std::int64_t max_blocks,
    const std::vector<std::int32_t>& indices, std::int32_t topk, const std::vector<std::int32_t>& topk_length,
    std::int64_t B, std::int64_t S_q) {
  std::set<std::pair<std::int64_t, std::int32_t>> out;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < S_q; ++s)
      for (std::int32_t j = 0; j < topk; ++j) {
        if (!topk_length.empty() && j >= topk_length[static_cast<std::size_t>(b)]) continue;
        const std::int64_t idx = indices[static_cast<std::size_t>((b * S_q + s) * topk + j)];
        if (mode == IndexMode::physical) {
          if (idx >= 0 && idx < g.capacity_tokens())
            out.insert({idx / g.page_tokens, static_cast<std::int32_t>(idx % g.page_tokens)});
        } else if (idx >= 0 && idx < max_blocks * g.page_tokens) {
          const std::int64_t blk = block_table[static_cast<std::size_t>(b * max_blocks + idx / g.page_tokens)];
          if (blk >= 0 && blk < g.num_blocks) out.insert({blk, static_cast<std::int32_t>(idx % g.page_tokens)});
        }
      }
  return out;
}

// Poisons every token no valid slot of the case selects (primary and extra). Returns how many.
inline std::int64_t poison_unreferenced(DecodeCase& c) {
  std::int64_t n = 0;
  auto poison = [&](MlaCacheBuffer& cache, const std::set<std::pair<std::int64_t, std::int32_t>>& used) {
    for (std::int64_t b = 0; b < cache.geo.num_blocks; ++b)
      for (std::int32_t t = 0; t < cache.geo.page_tokens; ++t)
        if (!used.count({b, t})) {
          poison_mla_token(cache, b, t);
          ++n;
        }
  };
  poison(c.cache, referenced_tokens(c.cache.geo, c.mode, c.block_table, c.max_blocks, c.indices, c.topk,
                                    c.topk_length, c.B, c.S_q));
  if (c.extra_cache)
    poison(*c.extra_cache, referenced_tokens(c.extra_cache->geo, c.mode, c.extra_block_table, c.extra_max_blocks,
                                             c.extra_indices, c.extra_topk, c.extra_topk_length, c.B, c.S_q));
  return n;
}

// Outputs pre-filled with a sentinel (NaN codes with a payload no computation produces).
inline constexpr std::uint16_t kSentinelBf16 = 0x7FA5;
inline constexpr std::uint32_t kSentinelF32 = 0x7FA5A5A5u;

struct Outputs {
  std::vector<std::uint16_t> out;
  std::vector<float> lse, max_logits;
  Outputs(std::int64_t T, std::int32_t H, int D_v = 512)
      : out(static_cast<std::size_t>(T * H * D_v), kSentinelBf16),
        lse(static_cast<std::size_t>(T * H), f32_from_bits(kSentinelF32)),
        max_logits(static_cast<std::size_t>(T * H), f32_from_bits(kSentinelF32)) {}
  SparseMlaOutputs view() { return {out, lse, max_logits}; }
  bool same_bits(const Outputs& o) const {
    return out == o.out && std::memcmp(lse.data(), o.lse.data(), lse.size() * 4) == 0 &&
           std::memcmp(max_logits.data(), o.max_logits.data(), max_logits.size() * 4) == 0 &&
           lse.size() == o.lse.size();
  }
};

inline std::string first_difference(const Outputs& a, const Outputs& b) {
  for (std::size_t i = 0; i < a.out.size(); ++i)
    if (a.out[i] != b.out[i]) return fmt::format("out[{}]: {:#06x} vs {:#06x}", i, a.out[i], b.out[i]);
  for (std::size_t i = 0; i < a.lse.size(); ++i)
    if (f32_bits(a.lse[i]) != f32_bits(b.lse[i])) return fmt::format("lse[{}]: {} vs {}", i, a.lse[i], b.lse[i]);
  for (std::size_t i = 0; i < a.max_logits.size(); ++i)
    if (f32_bits(a.max_logits[i]) != f32_bits(b.max_logits[i]))
      return fmt::format("max_logits[{}]: {} vs {}", i, a.max_logits[i], b.max_logits[i]);
  return "";
}

// Fast outputs against gold under a per-element bound. Non-finite gold elements must be matched
// exactly (same infinity, or NaN); a sentinel left in place is an unwritten element. Returns ""
// when every element passes, else the first failure with its coordinate.
inline std::string check_against_gold(const Outputs& fast, const SparseMlaGold& gold, const SparseMlaBound& bound,
                                      bool check_max_logits = true) {
  auto one = [](const char* name, std::size_t i, double got, double want, double budget,
                bool sentinel) -> std::string {
    if (sentinel) return fmt::format("{}[{}] was never written", name, i);
    if (!std::isfinite(want) || !std::isfinite(got)) {
      const bool same = (std::isnan(want) && std::isnan(got)) || got == want;
      return same ? "" : fmt::format("{}[{}]: got {} want {}", name, i, got, want);
    }
    const double err = std::fabs(got - want);
    if (err > budget)
      return fmt::format("{}[{}]: got {} want {} error {:.3g} > bound {:.3g} (ratio {:.3g})", name, i, got, want,
                         err, budget, err / budget);
    return "";
  };
  for (std::size_t i = 0; i < gold.out.size(); ++i) {
    auto e = one("out", i, bf16_to_f32(fast.out[i]), gold.out[i], bound.out[i], fast.out[i] == kSentinelBf16);
    if (!e.empty()) return e;
  }
  for (std::size_t i = 0; i < gold.lse.size(); ++i) {
    auto e = one("lse", i, fast.lse[i], gold.lse[i], bound.lse[i], f32_bits(fast.lse[i]) == kSentinelF32);
    if (!e.empty()) return e;
  }
  if (check_max_logits)
    for (std::size_t i = 0; i < gold.max_logits.size(); ++i) {
      auto e = one("max_logits", i, fast.max_logits[i], gold.max_logits[i], bound.max_logits[i],
                   f32_bits(fast.max_logits[i]) == kSentinelF32);
      if (!e.empty()) return e;
    }
  return "";
}

// ------------------------------------------------------------------------------------------------
// Random cases. The spec (shapes, layouts, modes) shrinks; the data comes from `seed`.
enum class SinkKind : std::uint8_t { none, finite, with_infinities };

struct CacheSpec {
  MlaLayout layout = MlaLayout::V32;
  int bf16_dim_qk = 576;
  Fp8Format fp8 = Fp8Format::e4m3fn;
  std::int32_t page_tokens = 16;
  std::int64_t num_blocks = 4;
  std::int64_t stride_pad = 0;  // extra bytes between blocks
  std::int32_t topk = 8;
  bool lengths = false;
  std::int64_t max_blocks = 4;  // logical mode
};

struct CaseSpec {
  std::int64_t B = 1, S_q = 1;
  std::int32_t H = 1;
  IndexMode mode = IndexMode::physical;
  CacheSpec primary;
  std::optional<CacheSpec> extra;
  SinkKind sink = SinkKind::none;
  ScalePolicy scale_policy = ScalePolicy::pow2_ceil;
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;
  std::uint64_t seed = 1;
};

inline void showValue(const CaseSpec& s, std::ostream& os) {
  auto cache = [](const CacheSpec& c) {
    return fmt::format("{}{} {} P={} nb={} pad={} topk={}{} max_blocks={}", to_string(c.layout),
                       c.layout == MlaLayout::BF16 ? fmt::format("-{}", c.bf16_dim_qk) : "", to_string(c.fp8),
                       c.page_tokens, c.num_blocks, c.stride_pad, c.topk, c.lengths ? " +lengths" : "", c.max_blocks);
  };
  os << fmt::format("B={} S_q={} H={} mode={} primary=[{}] extra=[{}] sink={} scales={} reader={}/{}/{} "
                    "conv={}/{}/{} seed={}",
                    s.B, s.S_q, s.H, to_string(s.mode), cache(s.primary), s.extra ? cache(*s.extra) : "none",
                    static_cast<int>(s.sink), to_string(s.scale_policy), to_string(s.reader.scale),
                    to_string(s.reader.product), to_string(s.reader.operand),
                    s.conventions.lse_empty == LseEmpty::pos_inf ? "+inf" : "-inf", s.conventions.sink_in_lse,
                    s.conventions.lse_base == LseBase::e ? "e" : "2", s.seed);
}

inline MlaCacheGeometry geometry_of(const CacheSpec& c) {
  MlaCacheGeometry g = MlaCacheGeometry::packed(c.layout, c.fp8, c.num_blocks, c.page_tokens, c.bf16_dim_qk);
  g.block_stride_bytes += c.stride_pad;
  if (c.layout == MlaLayout::MODEL1_SPLIT) g.scale_block_stride_bytes += c.stride_pad % 24;
  return g;
}

// Indices of one cache: valid ones (with duplicates), plus the nasty invalid values.
inline void random_selection(const CacheSpec& c, IndexMode mode, std::int64_t B, std::int64_t S_q, std::mt19937_64& rng,
                             std::vector<std::int32_t>& block_table, std::vector<std::int32_t>& indices,
                             std::vector<std::int32_t>& lengths) {
  const std::int64_t capacity = c.num_blocks * c.page_tokens;
  const std::int64_t range = mode == IndexMode::physical ? capacity : c.max_blocks * c.page_tokens;
  std::vector<std::int32_t> nasty = nasty_invalid_indices(range);
  if (mode == IndexMode::logical) {
    block_table.resize(static_cast<std::size_t>(B * c.max_blocks));
    std::vector<std::int32_t> bad = {-1, INT_MIN, INT_MAX, static_cast<std::int32_t>(c.num_blocks)};
    for (auto& e : block_table) {
      const auto roll = rng() % 8;
      e = roll == 0 ? bad[rng() % bad.size()] : static_cast<std::int32_t>(rng() % std::max<std::int64_t>(c.num_blocks, 1));
      if (c.num_blocks == 0 && roll != 0) e = -1;
    }
  }
  indices.resize(static_cast<std::size_t>(B * S_q * c.topk));
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const auto roll = rng() % 10;
    if (roll < 6 && range > 0) indices[i] = static_cast<std::int32_t>(rng() % range);
    else if (roll < 7 && i > 0) indices[i] = indices[rng() % i];  // a duplicate (or a copy of an invalid one)
    else indices[i] = nasty[rng() % nasty.size()];
  }
  if (c.lengths) {
    lengths.resize(static_cast<std::size_t>(B));
    for (auto& l : lengths) l = static_cast<std::int32_t>(rng() % (c.topk + 3)) - 1;  // −1 … topk+1 (clamped)
  }
}

inline DecodeCase build_case(const CaseSpec& s) {
  DecodeCase c;
  std::mt19937_64 rng(s.seed);
  c.B = s.B;
  c.S_q = s.S_q;
  c.H = s.H;
  c.mode = s.mode;
  c.cache = MlaCacheBuffer(geometry_of(s.primary));
  fill_random(c.cache, s.seed * 3 + 1, s.scale_policy);
  c.max_blocks = s.mode == IndexMode::logical ? s.primary.max_blocks : 0;
  c.topk = s.primary.topk;
  random_selection(s.primary, s.mode, s.B, s.S_q, rng, c.block_table, c.indices, c.topk_length);
  if (s.extra) {
    c.extra_cache.emplace(geometry_of(*s.extra));
    fill_random(*c.extra_cache, s.seed * 3 + 2, s.scale_policy);
    c.extra_max_blocks = s.mode == IndexMode::logical ? s.extra->max_blocks : 0;
    c.extra_topk = s.extra->topk;
    random_selection(*s.extra, s.mode, s.B, s.S_q, rng, c.extra_block_table, c.extra_indices, c.extra_topk_length);
  }
  const int D = c.cache.geo.dim_qk();
  c.q = random_bf16(c.T() * s.H * D, s.seed * 3 + 3, 2.0f);
  if (s.sink != SinkKind::none) {
    c.sink = random_rows(s.H, 1, s.seed * 3 + 4, 3.0f);
    if (s.sink == SinkKind::with_infinities)
      for (auto& v : c.sink) {
        const auto roll = rng() % 4;
        if (roll == 0) v = std::numeric_limits<float>::infinity();
        if (roll == 1) v = -std::numeric_limits<float>::infinity();
      }
  }
  c.reader = s.reader;
  c.conventions = s.conventions;
  return c;
}

inline rc::Gen<CacheSpec> gen_cache_spec(int dim_qk, int max_topk) {
  using namespace rc;
  const std::vector<MlaLayout> layouts =
      dim_qk == 576 ? std::vector<MlaLayout>{MlaLayout::V32, MlaLayout::BF16}
                    : std::vector<MlaLayout>{MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16};
  return gen::apply(
      [dim_qk](MlaLayout layout, Fp8Format fp8, std::int32_t P, std::int64_t nb, std::int64_t pad, std::int32_t topk,
               bool lengths, std::int64_t max_blocks) {
        CacheSpec c;
        c.layout = layout;
        c.bf16_dim_qk = dim_qk;
        c.fp8 = fp8;
        c.page_tokens = P;
        c.num_blocks = nb;
        c.stride_pad = pad;
        c.topk = topk;
        c.lengths = lengths;
        c.max_blocks = max_blocks;
        return c;
      },
      gen::elementOf(layouts), gen::element(Fp8Format::e4m3fn, Fp8Format::e4m3fnuz),
      gen::element<std::int32_t>(1, 2, 3, 16, 64), gen::inRange<std::int64_t>(0, 6),
      gen::element<std::int64_t>(0, 0, 8, 584), gen::inRange<std::int32_t>(0, max_topk + 1), gen::arbitrary<bool>(),
      gen::inRange<std::int64_t>(0, 8));
}

inline rc::Gen<CaseSpec> gen_case_spec(int max_h = 16, int max_topk = 128) {
  using namespace rc;
  return gen::mapcat(gen::element(576, 512), [=](int dim_qk) {
    return gen::apply(
        [](std::int64_t B, std::int64_t S_q, std::int32_t H, IndexMode mode, CacheSpec primary,
           rc::Maybe<CacheSpec> extra, SinkKind sink, ScalePolicy policy, int reader, int conv,
           std::uint64_t seed) {
          CaseSpec s;
          s.B = B;
          s.S_q = S_q;
          s.H = H;
          s.mode = mode;
          s.primary = primary;
          if (extra) s.extra = *extra;
          s.sink = sink;
          s.scale_policy = policy;
          const ReaderModel readers[] = {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(),
                                         ReaderModel::flashmla_sm100(), ReaderModel::exact_fp32()};
          s.reader = readers[reader];
          const MlaConventions convs[] = {MlaConventions::flashmla(), MlaConventions::xkernels(),
                                          MlaConventions::flashmla_prefill_2025()};
          s.conventions = convs[conv];
          s.seed = seed;
          return s;
        },
        gen::inRange<std::int64_t>(1, 4), gen::inRange<std::int64_t>(1, 3), gen::inRange<std::int32_t>(1, max_h + 1),
        gen::element(IndexMode::physical, IndexMode::logical), gen_cache_spec(dim_qk, max_topk),
        gen::maybe(gen_cache_spec(dim_qk, max_topk / 2)),
        gen::element(SinkKind::none, SinkKind::finite, SinkKind::with_infinities),
        gen::element(ScalePolicy::pow2_ceil, ScalePolicy::fp32), gen::inRange(0, 4), gen::inRange(0, 3),
        gen::noShrink(gen::arbitrary<std::uint64_t>()));
  });
}

}  // namespace dsa::test
