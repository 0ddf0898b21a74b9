// Self-checks of number formats and cache layouts: exact round trips, judged with budget 0.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "dsa/caches.hpp"
#include "dsa/quantize.hpp"
#include "dsa/selfcheck.hpp"

namespace dsa {

namespace {

CaseResult::Output exact_output(std::string name, const std::vector<double>& got, const std::vector<double>& want,
                                TensorShape shape, RatioHistogram& hist) {
  const std::vector<double> budget(want.size(), 0.0);
  CaseResult::Output o{std::move(name), compare(got, want, budget, shape)};
  for (std::size_t i = 0; i < want.size(); ++i) hist.add(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])) ? 0.0 : INFINITY);
  return o;
}

// Every fp8 code decodes and re-encodes to itself (NaN codes to the canonical NaN).
CaseResult fp8_roundtrip(Fp8Format f) {
  CaseResult r;
  r.shape = "256 codes";
  std::vector<double> got, want;
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const float v = fp8_to_f32(code, f);
    got.push_back(f32_to_fp8(v, f, Overflow::nonsat));
    want.push_back(fp8_is_nan(code, f) ? fp8_nan_code(f) : c);
  }
  r.outputs.push_back(exact_output("code", got, want, {{"code"}, {256}}, r.histogram));
  return r;
}

CaseResult bf16_roundtrip() {
  CaseResult r;
  r.shape = "65536 codes";
  std::vector<double> got, want;
  for (int c = 0; c < 65536; ++c) {
    const auto code = static_cast<std::uint16_t>(c);
    const float v = bf16_to_f32(code);
    const std::uint16_t back = f32_to_bf16(v);
    const bool nan = std::isnan(v);
    got.push_back(nan ? (std::isnan(bf16_to_f32(back)) ? 1 : 0) : back);
    want.push_back(nan ? 1 : c);
  }
  r.outputs.push_back(exact_output("code", got, want, {{"code"}, {65536}}, r.histogram));
  return r;
}

constexpr std::uint8_t kPoison = 0xFF;  // NaN in e4m3fn, a NaN bf16 pair, a NaN fp32 scale
constexpr int kPageSizes[] = {1, 2, 16, 53, 64, 69};

// Random slot mapping: n distinct slots of [0, capacity) with some −1 (skipped) entries.
std::vector<std::int64_t> random_slots(std::mt19937_64& rng, std::int64_t capacity, std::int64_t n) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(capacity));
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  std::vector<std::int64_t> slots(all.begin(), all.begin() + n);
  for (auto& s : slots)
    if (rng() % 8 == 0) s = -1;
  return slots;
}

// Writes random rows into a poisoned MLA cache, reads every written token back and compares
// with the values quantized independently of the layout arithmetic; also checks that bytes the
// writer must not touch (unwritten tokens, padding between blocks) still hold the poison.
CaseResult mla_roundtrip(MlaLayout layout, Fp8Format fmt, ScalePolicy policy, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int page = kPageSizes[rng() % std::size(kPageSizes)];
  const std::int64_t nb = 1 + static_cast<std::int64_t>(rng() % 6);
  auto geo = MlaCacheGeometry::packed(layout, fmt, nb, page, 576);
  geo.block_stride_bytes += static_cast<std::int64_t>(rng() % 3) * 64;
  if (layout == MlaLayout::MODEL1_SPLIT) geo.scale_block_stride_bytes += static_cast<std::int64_t>(rng() % 3) * 8;
  MlaCacheBuffer cache(geo);
  std::fill(cache.values.begin(), cache.values.end(), kPoison);
  std::fill(cache.scales.begin(), cache.scales.end(), kPoison);
  const auto poisoned = cache.values;
  const std::int64_t n = std::min<std::int64_t>(geo.capacity_tokens(), 1 + static_cast<std::int64_t>(rng() % 24));
  const int dim = geo.dim_qk();
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> rows(static_cast<std::size_t>(n * dim));
  for (auto& x : rows) x = normal(rng) * std::exp2(static_cast<float>(static_cast<int>(rng() % 9) - 4));
  const auto slots = random_slots(rng, geo.capacity_tokens(), n);
  quantize_kv(rows, n, dim, slots, cache.span(), {policy, 0.0f});

  const bool v32 = layout == MlaLayout::V32;
  const int nope = layout == MlaLayout::BF16 ? 0 : (v32 ? 512 : 448);
  const int tile = v32 ? 128 : 64;
  const float fmax = fp8_max(fmt);
  std::vector<double> got, want;
  std::vector<float> buf(static_cast<std::size_t>(dim));
  std::int64_t written = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (slots[static_cast<std::size_t>(i)] < 0) continue;
    ++written;
    const std::int64_t s = slots[static_cast<std::size_t>(i)];
    read_mla_token(cache.view(), s / page, s % page, ReaderModel::exact_fp32(), buf.data());
    const float* x = rows.data() + i * dim;
    for (int d = 0; d < dim; ++d) {
      float expect;
      if (d < nope) {
        const int k = d / tile;
        float amax = 0.0f;
        for (int e = k * tile; e < (k + 1) * tile; ++e) amax = std::max(amax, std::fabs(x[e]));
        const float sc = mla_tile_scale(amax, fmax, policy);
        expect = fp8_to_f32(f32_to_fp8(x[d] / sc, fmt, Overflow::saturate), fmt) * sc;
      } else {
        expect = round_to_bf16(x[d]);
      }
      got.push_back(buf[static_cast<std::size_t>(d)]);
      want.push_back(expect);
    }
  }
  // Bytes outside every written token's rows must be untouched: count bytes that changed
  // against bytes the written tokens own (value row, scale row), computed via the layout.
  std::vector<std::uint8_t> owned(cache.values.size(), 0);
  const std::int64_t row_bytes = layout == MlaLayout::V32 ? 656 : layout == MlaLayout::BF16 ? 2 * dim : 576;
  for (auto s : slots) {
    if (s < 0) continue;
    const std::int64_t base = (s / page) * geo.block_stride_bytes;
    const std::int64_t t = s % page;
    const std::int64_t row0 = layout == MlaLayout::BF16 ? layout::Bf16::dim_offset(t, 0, dim)
                              : v32                     ? layout::V32::dim_offset(t, 0)
                                                        : layout::Model1::dim_offset(t, 0);
    for (std::int64_t b = 0; b < row_bytes; ++b) owned[static_cast<std::size_t>(base + row0 + b)] = 1;
    if (layout == MlaLayout::MODEL1)
      for (int k = 0; k < 8; ++k) owned[static_cast<std::size_t>(base + layout::Model1::scale_offset(page, t, k))] = 1;
  }
  std::vector<double> stray_got, stray_want;
  for (std::size_t b = 0; b < owned.size(); ++b)
    if (!owned[b]) {
      stray_got.push_back(cache.values[b]);
      stray_want.push_back(poisoned[b]);
    }
  CaseResult r;
  r.shape = fmt::format("P={} blocks={} stride={} rows={} written={}", page, nb, geo.block_stride_bytes, n, written);
  r.outputs.push_back(exact_output("values", got, want, {{"token_dim"}, {static_cast<std::int64_t>(got.size())}}, r.histogram));
  r.outputs.push_back(exact_output("untouched_bytes", stray_got, stray_want,
                                   {{"byte"}, {static_cast<std::int64_t>(stray_got.size())}}, r.histogram));
  return r;
}

CaseResult index_k_roundtrip(IndexKLayout layout, Fp8Format fmt, bool ue8m0, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int pages16[] = {16, 32, 64};
  const int page = layout == IndexKLayout::preshuffle ? pages16[rng() % 3] : kPageSizes[rng() % std::size(kPageSizes)];
  const int dims[] = {32, 64, 128};
  const int dim = dims[rng() % 3];
  const std::int64_t nb = 1 + static_cast<std::int64_t>(rng() % 6);
  auto geo = IndexKGeometry::packed(layout, fmt, nb, page, dim);
  geo.block_stride_bytes += static_cast<std::int64_t>(rng() % 3) * 16;
  IndexKCacheBuffer cache(geo);
  std::fill(cache.bytes.begin(), cache.bytes.end(), kPoison);
  const std::int64_t n = std::min<std::int64_t>(geo.capacity_tokens(), 1 + static_cast<std::int64_t>(rng() % 40));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(static_cast<std::size_t>(n * dim));
  for (auto& x : k) x = normal(rng);
  const auto slots = random_slots(rng, geo.capacity_tokens(), n);
  quantize_index_k(k, n, slots, cache.span(), {ue8m0, 0.0f});
  std::vector<double> got, want;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t s = slots[static_cast<std::size_t>(i)];
    if (s < 0) continue;
    const float* x = k.data() + i * dim;
    float amax = 0.0f;
    for (int d = 0; d < dim; ++d) amax = std::max(amax, std::fabs(x[d]));
    const float sc = index_k_token_scale(amax, fp8_max(fmt), ue8m0);
    for (int d = 0; d < dim; ++d) {
      got.push_back(fp8_to_f32(read_index_k_code(cache.view(), s / page, s % page, d), fmt) *
                    read_index_k_scale(cache.view(), s / page, s % page));
      want.push_back(fp8_to_f32(f32_to_fp8(x[d] / sc, fmt, Overflow::saturate), fmt) * sc);
    }
  }
  CaseResult r;
  r.shape = fmt::format("P={} D={} blocks={} rows={}", page, dim, nb, n);
  r.outputs.push_back(exact_output("values", got, want, {{"token_dim"}, {static_cast<std::int64_t>(got.size())}}, r.histogram));
  return r;
}

}  // namespace

void add_format_checks(std::vector<SelfCheck>& checks) {
  for (Fp8Format f : {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz})
    checks.push_back({"format_roundtrip", "reference", to_string(f), "exact", [f](std::uint64_t) { return fp8_roundtrip(f); }});
  checks.push_back({"format_roundtrip", "reference", "bf16", "exact", [](std::uint64_t) { return bf16_roundtrip(); }});
}

void add_layout_checks(std::vector<SelfCheck>& checks) {
  for (MlaLayout l : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16})
    for (Fp8Format f : {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz}) {
      if (l == MlaLayout::BF16 && f == Fp8Format::e4m3fnuz) continue;
      const std::string name = fmt::format("{}/{}", to_string(l), l == MlaLayout::BF16 ? "bf16" : to_string(f));
      checks.push_back({"kv_cache_roundtrip", "quantize_kv+read", name, "pow2_ceil",
                        [l, f](std::uint64_t s) { return mla_roundtrip(l, f, ScalePolicy::pow2_ceil, s); }});
      if (l == MlaLayout::V32)
        checks.push_back({"kv_cache_roundtrip", "quantize_kv+read", name, "fp32_scale",
                          [l, f](std::uint64_t s) { return mla_roundtrip(l, f, ScalePolicy::fp32, s); }});
    }
  for (IndexKLayout l : {IndexKLayout::standard, IndexKLayout::preshuffle})
    for (Fp8Format f : {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz})
      for (bool ue8m0 : {false, true})
        checks.push_back({"index_k_roundtrip", "quantize_index_k+read", fmt::format("{}/{}", to_string(l), to_string(f)),
                          ue8m0 ? "ue8m0_scale" : "fp32_scale",
                          [l, f, ue8m0](std::uint64_t s) { return index_k_roundtrip(l, f, ue8m0, s); }});
}

}  // namespace dsa
