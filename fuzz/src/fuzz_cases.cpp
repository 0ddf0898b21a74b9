// Builds owning fuzz cases from specs: caches through the project's writers, bulk values from the
// seed, and NaN poison in every cache row that no valid slot selects (SPEC §10.4). Slot validity
// is derived here from SPEC §3 directly, not through the library's resolver, so that a resolver
// bug cannot hide itself by choosing which rows get poisoned.
#include "dsa/fuzz_cases.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "dsa/error.hpp"
#include "dsa/formats.hpp"
#include "dsa/layouts.hpp"

namespace dsa::fuzz {

const char* to_string(InvalidIndices v) {
  return v == InvalidIndices::any_out_of_range ? "any_out_of_range" : "only_minus_one";
}
const char* to_string(ValueStyle v) {
  switch (v) {
    case ValueStyle::normal: return "normal";
    case ValueStyle::offset: return "offset";
    case ValueStyle::extremes: return "extremes";
  }
  return "?";
}
const char* to_string(RowPattern v) {
  switch (v) {
    case RowPattern::as_drawn: return "as_drawn";
    case RowPattern::unique: return "unique";
    case RowPattern::leading_invalid: return "leading_invalid";
    case RowPattern::trailing_padding: return "trailing_padding";
    case RowPattern::all_invalid: return "all_invalid";
    case RowPattern::single_valid: return "single_valid";
  }
  return "?";
}
const char* to_string(SinkKind v) {
  switch (v) {
    case SinkKind::none: return "none";
    case SinkKind::finite: return "finite";
    case SinkKind::infinite_mix: return "infinite_mix";
  }
  return "?";
}
const char* to_string(TableStyle v) {
  switch (v) {
    case TableStyle::permutation: return "permutation";
    case TableStyle::aliasing: return "aliasing";
    case TableStyle::with_invalid: return "with_invalid";
  }
  return "?";
}
const char* to_string(LogitStyle v) {
  switch (v) {
    case LogitStyle::distinct: return "distinct";
    case LogitStyle::ties: return "ties";
    case LogitStyle::specials: return "specials";
  }
  return "?";
}

std::vector<std::int32_t> invalid_index_edges(std::int64_t range) {
  std::vector<std::int32_t> v = {-1, INT_MIN, -123456, -2, INT_MAX};
  if (range < INT_MAX) v.push_back(static_cast<std::int32_t>(range));
  if (range + 1 < INT_MAX) v.push_back(static_cast<std::int32_t>(range + 1));
  return v;
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
using Rng = std::mt19937_64;

std::size_t sz(std::int64_t n) { return static_cast<std::size_t>(n); }

float normal(Rng& rng) { return std::normal_distribution<float>(0.0f, 1.0f)(rng); }
int uniform_int(Rng& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

// One token's values, `dims` of them, quantized (by the caller's writer) in tiles of
// `tile_dims` over the first `quant_dims`; the rest are stored as bf16.
void token_values(float* x, int dims, int quant_dims, int tile_dims, ValueStyle style, Rng& rng) {
  const float amp = std::ldexp(1.0f, uniform_int(rng, -4, 3));
  const float offset = style == ValueStyle::offset ? amp * static_cast<float>(uniform_int(rng, -4, 4)) : 0.0f;
  for (int d = 0; d < dims; ++d) x[d] = amp * normal(rng) + offset;
  if (style != ValueStyle::extremes || tile_dims <= 0) return;
  for (int t0 = 0; t0 < quant_dims; t0 += tile_dims) {
    const int n = std::min(tile_dims, quant_dims - t0);
    float* tile = x + t0;
    switch (uniform_int(rng, 0, 4)) {
      case 0:  // all-zero tile (the writer stores its floor scale)
        std::fill(tile, tile + n, 0.0f);
        break;
      case 1:  // every element ±amax: codes ±fmax
        for (int i = 0; i < n; ++i) tile[i] = (rng() & 1) ? amp : -amp;
        break;
      case 2: {  // one large element over tiny ones: subnormal codes
        const float tiny = std::ldexp(amp, -uniform_int(rng, 13, 18));
        for (int i = 0; i < n; ++i) tile[i] = tiny * normal(rng);
        tile[uniform_int(rng, 0, n - 1)] = (rng() & 1) ? 3.0f * amp : -3.0f * amp;
        break;
      }
      case 3:  // a tile so small that the writer's scale floor applies
        for (int i = 0; i < n; ++i) tile[i] = std::ldexp(normal(rng), -12);
        break;
      default: break;
    }
  }
}

// ---- sparse MLA selections ------------------------------------------------------------------

MlaCacheGeometry mla_geometry(const MlaSelectionSpec& s) {
  MlaCacheGeometry g = MlaCacheGeometry::packed(s.layout, s.fp8, s.num_blocks, s.page_tokens, s.bf16_dim_qk);
  g.block_stride_bytes += s.stride_pad;
  if (s.layout == MlaLayout::MODEL1_SPLIT) g.scale_block_stride_bytes += 8 * (s.stride_pad % 3);
  return g;
}

std::vector<std::int32_t> block_table(TableStyle style, std::int64_t entries, std::int64_t nb, Rng& rng) {
  std::vector<std::int32_t> t(sz(entries), -1);
  if (nb <= 0) return t;
  std::vector<std::int32_t> perm(sz(nb));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  const std::int32_t bad[] = {-1, static_cast<std::int32_t>(nb), INT_MIN, INT_MAX};
  for (std::int64_t i = 0; i < entries; ++i) {
    auto& e = t[sz(i)];
    switch (style) {
      case TableStyle::permutation: e = perm[sz(i % nb)]; break;
      case TableStyle::aliasing: e = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(nb)); break;
      case TableStyle::with_invalid: e = (rng() % 4 == 0) ? bad[rng() % 4] : perm[sz(i % nb)]; break;
    }
  }
  return t;
}

// Indices of one selection from its drawn codes and row patterns.
MlaSelectionCase select(const MlaSelectionSpec& s, IndexMode mode, std::int64_t B, std::int64_t rows,
                        InvalidIndices invalid, Rng& rng) {
  MlaSelectionCase c;
  c.cache = MlaCacheBuffer(mla_geometry(s));
  c.topk = s.topk;
  c.lengths = s.lengths;
  const std::int64_t P = s.page_tokens;
  if (mode == IndexMode::logical) {
    c.max_blocks = s.max_blocks;
    c.block_table = block_table(s.table, B * s.max_blocks, s.num_blocks, rng);
  }
  const std::int64_t range = mode == IndexMode::physical ? s.num_blocks * P : s.max_blocks * P;
  const std::vector<std::int32_t> edges = invalid_index_edges(range);
  auto is_valid_value = [&](std::int64_t v) { return v >= 0 && v < range; };
  auto invalid_value = [&](std::int64_t r, std::int64_t j) -> std::int32_t {
    if (invalid == InvalidIndices::only_minus_one) return -1;
    return edges[sz((r * 7 + j) % static_cast<std::int64_t>(edges.size()))];
  };
  c.indices.assign(sz(rows * s.topk), -1);
  for (std::int64_t r = 0; r < rows; ++r) {
    const RowPattern pat = r < static_cast<std::int64_t>(s.patterns.size()) ? s.patterns[sz(r)] : RowPattern::as_drawn;
    const std::int64_t at = r < static_cast<std::int64_t>(s.pattern_at.size()) ? s.pattern_at[sz(r)] : 0;
    std::set<std::int64_t> seen;
    for (std::int64_t j = 0; j < s.topk; ++j) {
      std::int64_t v = s.codes[sz(r * s.topk + j)];
      if (!is_valid_value(v) && invalid == InvalidIndices::only_minus_one) v = -1;
      switch (pat) {
        case RowPattern::as_drawn: break;
        case RowPattern::unique:
          if (is_valid_value(v)) {
            std::int64_t tries = 0;
            while (seen.count(v) && tries++ < range) v = (v + 1) % range;
            if (seen.count(v)) v = invalid_value(r, j);
            else seen.insert(v);
          }
          break;
        case RowPattern::leading_invalid:
          if (j < at) v = invalid_value(r, j);
          break;
        case RowPattern::trailing_padding:
          if (j >= at) v = -1;
          break;
        case RowPattern::all_invalid: v = invalid_value(r, j); break;
        case RowPattern::single_valid:
          if (j != at % std::max<std::int64_t>(s.topk, 1)) v = invalid_value(r, j);
          else if (range > 0) v = ((v % range) + range) % range;
          break;
      }
      c.indices[sz(r * s.topk + j)] = static_cast<std::int32_t>(v);
    }
  }
  return c;
}

// Writes random rows into every referenced token of the cache and poisons every other token.
void fill_selection(MlaSelectionCase& c, IndexMode mode, std::int64_t rows, std::int64_t rows_per_batch,
                    ScalePolicy policy, ValueStyle style, Rng& rng) {
  auto& g = c.cache.geo;
  // Every byte first 0xFF: the gaps between pages and the padding hold garbage.
  std::fill(c.cache.values.begin(), c.cache.values.end(), std::uint8_t{0xFF});
  std::fill(c.cache.scales.begin(), c.cache.scales.end(), std::uint8_t{0xFF});
  std::set<std::pair<std::int64_t, std::int32_t>> used;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int32_t j = 0; j < c.topk; ++j) {
      const TokenRef ref = resolve(c, mode, r, rows_per_batch, j);
      if (ref.block >= 0) used.insert({ref.block, ref.t});
    }
  for (std::int64_t b = 0; b < g.num_blocks; ++b)
    for (std::int32_t t = 0; t < g.page_tokens; ++t)
      if (!used.count({b, t})) poison_mla_token(c.cache, b, t);
  if (used.empty()) return;
  const int D = g.dim_qk();
  const bool bf16_layout = g.layout == MlaLayout::BF16;
  const int quant_dims = bf16_layout ? 0 : (g.layout == MlaLayout::V32 ? layout::V32::nope_dims : layout::Model1::nope_dims);
  const int tile = bf16_layout ? 0 : (g.layout == MlaLayout::V32 ? layout::V32::tile_dims : layout::Model1::tile_dims);
  std::vector<float> values(used.size() * sz(D));
  std::vector<std::int64_t> slots;
  slots.reserve(used.size());
  std::size_t i = 0;
  for (const auto& [b, t] : used) {
    token_values(values.data() + i * sz(D), D, quant_dims, tile, style, rng);
    slots.push_back(b * g.page_tokens + t);
    ++i;
  }
  MlaQuantParams qp;
  qp.policy = g.layout == MlaLayout::V32 ? policy : ScalePolicy::pow2_ceil;
  quantize_kv(values, static_cast<std::int64_t>(slots.size()), D, slots, c.cache.span(), qp);
}

std::vector<std::uint16_t> random_bf16(std::int64_t n, float amp, Rng& rng) {
  std::vector<std::uint16_t> v(sz(n));
  for (auto& x : v) x = f32_to_bf16(amp * normal(rng));
  return v;
}

std::vector<float> sinks(SinkKind kind, std::int32_t H, Rng& rng) {
  std::vector<float> s;
  if (kind == SinkKind::none) return s;
  s.resize(sz(H));
  for (auto& v : s) {
    v = 2.0f * normal(rng);
    if (kind == SinkKind::infinite_mix) {
      const auto roll = rng() % 3;
      if (roll == 0) v = kInf;
      if (roll == 1) v = -kInf;
    }
  }
  return s;
}

std::string reader_name(const ReaderModel& m) {
  return fmt::format("{}/{}/{}", to_string(m.scale), to_string(m.product), to_string(m.operand));
}
std::string conv_name(const MlaConventions& c) {
  return fmt::format("lse_empty={} sink_in_lse={} base={}", c.lse_empty == LseEmpty::pos_inf ? "+inf" : "-inf",
                     c.sink_in_lse ? 1 : 0, c.lse_base == LseBase::e ? "e" : "2");
}

std::string selection_text(const MlaSelectionCase& c, bool logical) {
  const auto& g = c.cache.geo;
  std::string s = fmt::format("{}{} {} P={} nb={} stride={} topk={}", to_string(g.layout),
                              g.layout == MlaLayout::BF16 ? fmt::format("-{}", g.bf16_dim_qk) : "", to_string(g.fp8),
                              g.page_tokens, g.num_blocks, g.block_stride_bytes, c.topk);
  if (logical) s += fmt::format(" max_blocks={} table={}", c.max_blocks, fmt::join(c.block_table, ","));
  s += fmt::format(" indices={}", fmt::join(c.indices, ","));
  if (!c.lengths.empty()) s += fmt::format(" lengths={}", fmt::join(c.lengths, ","));
  return s;
}

std::string selection_spec_text(const MlaSelectionSpec& s) {
  std::string pats;
  for (std::size_t i = 0; i < s.patterns.size(); ++i)
    pats += fmt::format("{}{}@{}", i ? "," : "", to_string(s.patterns[i]), s.pattern_at[i]);
  return fmt::format("{}{} {} scales={} P={} nb={} pad={} topk={} max_blocks={} table={} codes=[{}] patterns=[{}] "
                     "lengths=[{}]",
                     to_string(s.layout), s.layout == MlaLayout::BF16 ? fmt::format("-{}", s.bf16_dim_qk) : "",
                     to_string(s.fp8), to_string(s.scale_policy), s.page_tokens, s.num_blocks, s.stride_pad, s.topk,
                     s.max_blocks, to_string(s.table), fmt::join(s.codes, ","), pats, fmt::join(s.lengths, ","));
}

}  // namespace

std::int32_t eligible(const MlaSelectionCase& s, std::int64_t r, std::int64_t rows_per_batch) {
  if (s.lengths.empty()) return s.topk;
  const std::int64_t len = s.lengths[sz(r / rows_per_batch)];
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(len, 0, s.topk));
}

TokenRef resolve(const MlaSelectionCase& s, IndexMode mode, std::int64_t r, std::int64_t rows_per_batch,
                 std::int32_t j) {
  if (j >= eligible(s, r, rows_per_batch)) return {};
  const std::int64_t b = r / rows_per_batch;
  const std::int64_t idx = s.indices[sz(r * s.topk + j)];
  const std::int64_t P = s.cache.geo.page_tokens, nb = s.cache.geo.num_blocks;
  if (mode == IndexMode::physical) {
    if (idx < 0 || idx >= nb * P) return {};
    return {idx / P, static_cast<std::int32_t>(idx % P)};
  }
  if (idx < 0 || idx >= s.max_blocks * P) return {};
  const std::int64_t blk = s.block_table[sz(b * s.max_blocks + idx / P)];
  if (blk < 0 || blk >= nb) return {};
  return {blk, static_cast<std::int32_t>(idx % P)};
}

SparseMlaDecodeParams DecodeCase::params() const {
  SparseMlaDecodeParams p;
  p.q = q;
  p.B = B;
  p.S_q = S_q;
  p.H = H;
  p.index_mode = mode;
  p.cache = primary.cache.view();
  p.block_table = primary.block_table;
  p.max_blocks = primary.max_blocks;
  p.indices = primary.indices;
  p.topk = primary.topk;
  p.topk_length = primary.lengths;
  if (extra) {
    p.extra_cache = extra->cache.view();
    p.extra_block_table = extra->block_table;
    p.extra_max_blocks = extra->max_blocks;
    p.extra_indices = extra->indices;
    p.extra_topk = extra->topk;
    p.extra_topk_length = extra->lengths;
  }
  p.attn_sink = sink;
  p.sm_scale = sm_scale;
  p.reader = reader;
  p.conventions = conventions;
  return p;
}

std::string DecodeCase::describe() const {
  return fmt::format("sparse_mla_decode B={} S_q={} H={} mode={} splits={} sm_scale={} sink=[{}] reader={} {} "
                     "primary=[{}] extra=[{}] seed={}",
                     B, S_q, H, to_string(mode), num_splits, sm_scale, fmt::join(sink, ","), reader_name(reader),
                     conv_name(conventions), selection_text(primary, mode == IndexMode::logical),
                     extra ? selection_text(*extra, mode == IndexMode::logical) : "none", seed);
}

SparseMlaPrefillParams PrefillCase::params() const {
  SparseMlaPrefillParams p;
  p.q = q;
  p.S_q = S_q;
  p.H = H;
  p.kv = kv.cache.view();
  p.indices = kv.indices;
  p.topk = kv.topk;
  p.topk_length = kv.lengths;
  p.attn_sink = sink;
  p.sm_scale = sm_scale;
  p.reader = reader;
  p.conventions = conventions;
  return p;
}

std::string PrefillCase::describe() const {
  return fmt::format("sparse_mla_prefill S_q={} H={} splits={} sm_scale={} sink=[{}] reader={} {} kv=[{}] seed={}", S_q,
                     H, num_splits, sm_scale, fmt::join(sink, ","), reader_name(reader), conv_name(conventions),
                     selection_text(kv, false), seed);
}

DecodeCase build(const DecodeSpec& s) {
  Rng rng(s.seed);
  DecodeCase c;
  c.B = s.B;
  c.S_q = s.S_q;
  c.H = s.H;
  c.mode = s.mode;
  c.seed = s.seed;
  c.num_splits = s.num_splits;
  const std::int64_t rows = s.B * s.S_q;
  c.primary = select(s.primary, s.mode, s.B, rows, s.invalid, rng);
  fill_selection(c.primary, s.mode, rows, s.S_q, s.primary.scale_policy, s.values, rng);
  if (s.extra) {
    c.extra = select(*s.extra, s.mode, s.B, rows, s.invalid, rng);
    fill_selection(*c.extra, s.mode, rows, s.S_q, s.extra->scale_policy, s.values, rng);
  }
  const float q_amp = s.values == ValueStyle::normal ? 1.0f : (s.values == ValueStyle::offset ? 3.0f : 0.25f);
  c.q = random_bf16(rows * s.H * c.primary.cache.geo.dim_qk(), q_amp, rng);
  c.sink = sinks(s.sink, s.H, rng);
  c.sm_scale = s.sm_scale;
  c.reader = s.reader;
  c.conventions = s.conventions;
  return c;
}

PrefillCase build(const PrefillSpec& s) {
  Rng rng(s.seed);
  PrefillCase c;
  c.S_q = s.S_q;
  c.H = s.H;
  c.seed = s.seed;
  c.num_splits = s.num_splits;
  c.kv = select(s.kv, IndexMode::physical, s.S_q, s.S_q, s.invalid, rng);
  fill_selection(c.kv, IndexMode::physical, s.S_q, 1, s.kv.scale_policy, s.values, rng);
  const float q_amp = s.values == ValueStyle::normal ? 1.0f : (s.values == ValueStyle::offset ? 3.0f : 0.25f);
  c.q = random_bf16(s.S_q * s.H * c.kv.cache.geo.dim_qk(), q_amp, rng);
  c.sink = sinks(s.sink, s.H, rng);
  c.sm_scale = s.sm_scale;
  c.reader = s.reader;
  c.conventions = s.conventions;
  return c;
}

MlaOutputs::MlaOutputs(std::int64_t T, std::int32_t H, bool with_max_logits, int D_v)
    : out(sz(T * H * D_v), kSentinelBf16),
      lse(sz(T * H), f32_from_bits(kSentinelF32)),
      max_logits(with_max_logits ? sz(T * H) : 0, f32_from_bits(kSentinelF32)) {}

bool MlaOutputs::same_bits(const MlaOutputs& o) const { return first_difference(o).empty(); }

std::string MlaOutputs::first_difference(const MlaOutputs& o) const {
  if (out.size() != o.out.size() || lse.size() != o.lse.size() || max_logits.size() != o.max_logits.size())
    return "output sizes differ";
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] != o.out[i])
      return fmt::format("out[{}] (row·head {}, d {}): {:#06x} ({}) vs {:#06x} ({})", i, i / 512, i % 512, out[i],
                         bf16_to_f32(out[i]), o.out[i], bf16_to_f32(o.out[i]));
  for (std::size_t i = 0; i < lse.size(); ++i)
    if (f32_bits(lse[i]) != f32_bits(o.lse[i])) return fmt::format("lse[{}]: {} vs {}", i, lse[i], o.lse[i]);
  for (std::size_t i = 0; i < max_logits.size(); ++i)
    if (f32_bits(max_logits[i]) != f32_bits(o.max_logits[i]))
      return fmt::format("max_logits[{}]: {} vs {}", i, max_logits[i], o.max_logits[i]);
  return "";
}

// ---- indexer ----------------------------------------------------------------------------------

namespace {

void poison_index_block(IndexKCacheBuffer& c, std::int64_t block) {
  const auto& g = c.geo;
  std::uint8_t* page = c.bytes.data() + block * g.block_stride_bytes;
  std::fill(page, page + std::int64_t{g.page_tokens} * g.head_dim, fp8_nan_code(g.fp8));
  for (std::int64_t t = 0; t < g.page_tokens; ++t)
    store_f32(page + layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t), std::numeric_limits<float>::quiet_NaN());
}

std::int64_t paged_end(const PagedLogitsSpec& s, std::int64_t b, std::int64_t i) {
  const std::int64_t e = s.kind == ContextLens::per_sequence ? std::int64_t{s.context_lens[sz(b)]} - s.N + i + 1
                                                             : s.context_lens[sz(b * s.N + i)];
  return std::max<std::int64_t>(e, 0);
}

void index_k_values(float* x, std::int64_t D, ValueStyle style, Rng& rng) {
  const float mag = std::ldexp(1.0f, uniform_int(rng, -6, 4));
  const float offset = style == ValueStyle::offset ? mag * static_cast<float>(uniform_int(rng, -3, 3)) : 0.0f;
  for (std::int64_t d = 0; d < D; ++d) x[d] = mag * normal(rng) + offset;
  if (style == ValueStyle::extremes) {
    switch (uniform_int(rng, 0, 3)) {
      case 0: std::fill(x, x + D, 0.0f); break;
      case 1:
        for (std::int64_t d = 0; d < D; ++d) x[d] = (rng() & 1) ? mag : -mag;
        break;
      case 2:
        for (std::int64_t d = 0; d < D; ++d) x[d] = std::ldexp(mag, -14) * normal(rng);
        x[uniform_int(rng, 0, static_cast<int>(D) - 1)] = 4.0f * mag;
        break;
      default: break;
    }
  }
}

std::uint8_t q_code(Fp8Format f, ValueStyle style, Rng& rng) {
  float v = 8.0f * normal(rng);
  if (style == ValueStyle::extremes) {
    const auto roll = rng() % 8;
    if (roll == 0) v = 0.0f;
    if (roll == 1) v = (rng() & 1) ? fp8_max(f) : -fp8_max(f);
    if (roll == 2) v = std::ldexp(normal(rng), -9);  // subnormal codes
  }
  return f32_to_fp8(v, f);
}

}  // namespace

PagedMqaLogitsParams PagedLogitsCase::params(std::span<float> logits) const {
  PagedMqaLogitsParams p;
  p.batch = B;
  p.next_n = N;
  p.num_heads = H;
  p.head_dim = D;
  p.q = q;
  p.q_fp8 = q_fp8;
  p.weights = weights;
  p.context_lens_kind = kind;
  p.context_lens = context_lens;
  p.block_table = block_table;
  p.max_blocks = max_blocks;
  p.cache = cache.view();
  p.reader_layout = cache.geo.layout;
  p.k_scale_at = k_scale_at;
  p.max_ctx = max_ctx;
  p.logits = logits;
  p.logits_row_stride = row_stride;
  return p;
}

std::string PagedLogitsCase::describe() const {
  const auto& g = cache.geo;
  return fmt::format("paged_mqa_logits B={} N={} H={} D={} {} {} P={} nb={} stride={} ctx({})=[{}] max_blocks={} "
                     "table=[{}] max_ctx={} row_stride={} k_scale_at={} seed={}",
                     B, N, H, D, to_string(g.layout), to_string(g.fp8), g.page_tokens, g.num_blocks,
                     g.block_stride_bytes, to_string(kind), fmt::join(context_lens, ","), max_blocks,
                     fmt::join(block_table, ","), max_ctx, row_stride, to_string(k_scale_at), seed);
}

PagedLogitsCase build(const PagedLogitsSpec& s) {
  Rng rng(s.seed);
  PagedLogitsCase c;
  c.B = s.B;
  c.N = s.N;
  c.H = s.H;
  c.D = s.D;
  c.q_fp8 = s.fp8;
  c.kind = s.kind;
  c.context_lens = s.context_lens;
  c.k_scale_at = s.k_scale_at;
  c.seed = s.seed;
  std::vector<std::int64_t> end(sz(s.B), 0), blocks(sz(s.B), 0);
  std::int64_t max_end = 0, needed = 0;
  for (std::int64_t b = 0; b < s.B; ++b) {
    for (std::int64_t i = 0; i < s.N; ++i) end[sz(b)] = std::max(end[sz(b)], paged_end(s, b, i));
    blocks[sz(b)] = (end[sz(b)] + s.page_tokens - 1) / s.page_tokens;
    max_end = std::max(max_end, end[sz(b)]);
    needed += blocks[sz(b)];
  }
  const std::int64_t pool = s.table == TableStyle::aliasing ? std::max<std::int64_t>(1, (needed + 1) / 2) : needed;
  const std::int64_t nb = pool + s.spare_blocks;
  auto geo = IndexKGeometry::packed(s.layout, s.fp8, nb, s.page_tokens, static_cast<std::int32_t>(s.D));
  geo.block_stride_bytes += 4 * s.block_pad_words;
  c.cache = IndexKCacheBuffer(geo);
  std::fill(c.cache.bytes.begin(), c.cache.bytes.end(), std::uint8_t{0xFF});
  for (std::int64_t blk = 0; blk < nb; ++blk) poison_index_block(c.cache, blk);

  std::vector<std::int32_t> perm(sz(nb));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  c.max_blocks = 1 + (blocks.empty() ? 0 : *std::max_element(blocks.begin(), blocks.end()));
  c.block_table.assign(sz(s.B * c.max_blocks), 0);
  const std::int32_t garbage[] = {-1, INT_MIN, INT_MAX, static_cast<std::int32_t>(nb)};
  std::int64_t next = 0;
  for (std::int64_t b = 0; b < s.B; ++b)
    for (std::int64_t j = 0; j < c.max_blocks; ++j) {
      auto& e = c.block_table[sz(b * c.max_blocks + j)];
      if (j >= blocks[sz(b)]) e = garbage[rng() % 4];
      else if (s.table == TableStyle::aliasing) e = perm[sz(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(pool)))];
      else e = perm[sz(next++)];
    }
  std::vector<float> k_rows;
  std::vector<std::int64_t> slots;
  std::vector<float> tok(sz(s.D));
  for (std::int64_t b = 0; b < s.B; ++b)
    for (std::int64_t t = 0; t < end[sz(b)]; ++t) {
      index_k_values(tok.data(), s.D, s.values, rng);
      k_rows.insert(k_rows.end(), tok.begin(), tok.end());
      slots.push_back(std::int64_t{c.block_table[sz(b * c.max_blocks + t / s.page_tokens)]} * s.page_tokens +
                      t % s.page_tokens);
    }
  IndexKQuantParams qp;
  qp.ue8m0_scale = s.ue8m0_scales;
  quantize_index_k(k_rows, static_cast<std::int64_t>(slots.size()), slots, c.cache.span(), qp);
  c.q.resize(sz(s.B * s.N * s.H * s.D));
  for (auto& code : c.q) code = q_code(s.fp8, s.values, rng);
  c.weights.resize(sz(s.B * s.N * s.H));
  for (auto& w : c.weights) w = std::ldexp(normal(rng), uniform_int(rng, -6, 4));
  c.max_ctx = max_end + s.max_ctx_slack;
  c.row_stride = c.max_ctx + s.stride_slack;
  return c;
}

MqaLogitsParams MqaLogitsCase::params(std::span<float> logits) const {
  MqaLogitsParams p;
  p.seq_len = S;
  p.seq_len_kv = S_kv;
  p.num_heads = H;
  p.head_dim = D;
  p.q = q;
  p.q_fp8 = fp8;
  p.k = k;
  p.k_fp8 = fp8;
  p.k_scales = k_scales;
  p.weights = weights;
  p.ks = ks;
  p.ke = ke;
  p.k_scale_at = k_scale_at;
  p.logits = logits;
  p.logits_row_stride = row_stride;
  return p;
}

std::string MqaLogitsCase::describe() const {
  return fmt::format("mqa_logits S={} S_kv={} H={} D={} {} ks=[{}] ke=[{}] row_stride={} k_scale_at={} seed={}", S,
                     S_kv, H, D, to_string(fp8), fmt::join(ks, ","), fmt::join(ke, ","), row_stride,
                     to_string(k_scale_at), seed);
}

MqaLogitsCase build(const MqaLogitsSpec& s) {
  Rng rng(s.seed);
  MqaLogitsCase c;
  c.S = s.S;
  c.S_kv = s.S_kv;
  c.H = s.H;
  c.D = s.D;
  c.fp8 = s.fp8;
  c.k_scale_at = s.k_scale_at;
  c.ks = s.ks;
  c.ke = s.ke;
  c.seed = s.seed;
  c.row_stride = s.S_kv + s.stride_slack;
  c.q.resize(sz(s.S * s.H * s.D));
  for (auto& code : c.q) code = q_code(s.fp8, s.values, rng);
  c.k.resize(sz(s.S_kv * s.D));
  c.k_scales.resize(sz(s.S_kv));
  std::vector<float> tok(sz(s.D));
  const float fmax = fp8_max(s.fp8);
  for (std::int64_t t = 0; t < s.S_kv; ++t) {
    index_k_values(tok.data(), s.D, s.values, rng);
    float amax = 0.0f;
    for (float v : tok) amax = std::max(amax, std::fabs(v));
    const float scale = index_k_token_scale(amax, fmax, s.ue8m0_scales);
    c.k_scales[sz(t)] = scale;
    for (std::int64_t d = 0; d < s.D; ++d) c.k[sz(t * s.D + d)] = f32_to_fp8(tok[sz(d)] / scale, s.fp8);
  }
  c.weights.resize(sz(s.S * s.H));
  for (auto& w : c.weights) w = std::ldexp(normal(rng), uniform_int(rng, -6, 4));
  return c;
}

// ---- top-k ------------------------------------------------------------------------------------

std::string TopkCase::describe() const {
  std::string r;
  for (const auto& v : ranges) r += fmt::format("[{},{})", v.begin, v.end);
  std::string l;
  for (std::int64_t i = 0; i < rows; ++i) {
    const auto& v = ranges[sz(i)];
    std::vector<float> vis(logits.begin() + i * row_stride + v.begin, logits.begin() + i * row_stride + v.end);
    l += fmt::format("{}[{}]", i ? " " : "", fmt::join(vis, ","));
  }
  return fmt::format("topk rows={} row_stride={} k={} ranges={} visible logits={} seed={}", rows, row_stride, k, r, l,
                     seed);
}

TopkCase build(const TopkSpec& s) {
  Rng rng(s.seed);
  TopkCase c;
  c.rows = s.rows;
  c.row_stride = s.width + s.stride_slack;
  c.k = s.k;
  c.seed = s.seed;
  c.logits.assign(sz(s.rows * c.row_stride), 0.0f);
  c.ranges.resize(sz(s.rows));
  const float specials[] = {kInf, -kInf, std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f};
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const VisibleRange v{s.begin[sz(r)], s.end[sz(r)]};
    c.ranges[sz(r)] = v;
    for (std::int64_t t = 0; t < c.row_stride; ++t) {
      float& x = c.logits[sz(r * c.row_stride + t)];
      if (!v.contains(t)) {
        // Never to be selected: the largest values there are, so a kernel that reads outside the
        // visible range picks them.
        x = (t % 2) ? kInf : std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      switch (s.style) {
        case LogitStyle::distinct: x = 4.0f * normal(rng); break;
        case LogitStyle::ties: x = static_cast<float>(uniform_int(rng, -2, 2)); break;
        case LogitStyle::specials:
          x = (rng() % 4 == 0) ? specials[rng() % 5] : static_cast<float>(uniform_int(rng, -2, 2));
          break;
      }
    }
  }
  return c;
}

// ---- showValue ----------------------------------------------------------------------------------

void showValue(const DecodeSpec& s, std::ostream& os) {
  os << fmt::format("DecodeSpec{{B={} S_q={} H={} mode={} invalid={} splits={} sink={} sm_scale={} reader={} {} "
                    "values={} seed={}\n  primary: {}\n  extra: {}}}",
                    s.B, s.S_q, s.H, to_string(s.mode), to_string(s.invalid), s.num_splits, to_string(s.sink),
                    s.sm_scale, reader_name(s.reader), conv_name(s.conventions), to_string(s.values), s.seed,
                    selection_spec_text(s.primary), s.extra ? selection_spec_text(*s.extra) : "none");
}

void showValue(const PrefillSpec& s, std::ostream& os) {
  os << fmt::format("PrefillSpec{{S_q={} H={} invalid={} splits={} sink={} sm_scale={} reader={} {} values={} "
                    "seed={}\n  kv: {}}}",
                    s.S_q, s.H, to_string(s.invalid), s.num_splits, to_string(s.sink), s.sm_scale,
                    reader_name(s.reader), conv_name(s.conventions), to_string(s.values), s.seed,
                    selection_spec_text(s.kv));
}

void showValue(const PagedLogitsSpec& s, std::ostream& os) {
  os << fmt::format("PagedLogitsSpec{{B={} N={} H={} D={} P={} {} {} ctx({})=[{}] max_ctx_slack={} stride_slack={} "
                    "block_pad_words={} spare={} table={} ue8m0={} k_scale_at={} values={} seed={}}}",
                    s.B, s.N, s.H, s.D, s.page_tokens, to_string(s.layout), to_string(s.fp8), to_string(s.kind),
                    fmt::join(s.context_lens, ","), s.max_ctx_slack, s.stride_slack, s.block_pad_words,
                    s.spare_blocks, to_string(s.table), s.ue8m0_scales, to_string(s.k_scale_at),
                    to_string(s.values), s.seed);
}

void showValue(const MqaLogitsSpec& s, std::ostream& os) {
  os << fmt::format("MqaLogitsSpec{{S={} S_kv={} H={} D={} {} ks=[{}] ke=[{}] stride_slack={} ue8m0={} "
                    "k_scale_at={} values={} seed={}}}",
                    s.S, s.S_kv, s.H, s.D, to_string(s.fp8), fmt::join(s.ks, ","), fmt::join(s.ke, ","),
                    s.stride_slack, s.ue8m0_scales, to_string(s.k_scale_at), to_string(s.values), s.seed);
}

void showValue(const TopkSpec& s, std::ostream& os) {
  std::string r;
  for (std::size_t i = 0; i < s.begin.size(); ++i) r += fmt::format("[{},{})", s.begin[i], s.end[i]);
  os << fmt::format("TopkSpec{{rows={} width={} stride_slack={} k={} ranges={} style={} seed={}}}", s.rows, s.width,
                    s.stride_slack, s.k, r, to_string(s.style), s.seed);
}

}  // namespace dsa::fuzz
