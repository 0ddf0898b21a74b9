// Test helpers for the lightning-indexer suites: random paged cases with poisoned unused pages
// and garbage in unread block-table entries, hand-built caches, and the interim fast-vs-gold
// error bound of paged_mqa_logits / mqa_logits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/formats.hpp"
#include "dsa/layouts.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/quantize.hpp"

namespace idx_test {

using dsa::ContextLens;
using dsa::Fp8Format;
using dsa::IndexKLayout;
using dsa::KScaleAt;

// A NaN whose payload no arithmetic produces: proves a position was (not) written.
inline constexpr std::uint32_t kSentinelBits = 0x7FA5A5A5u;
inline float sentinel() { return dsa::f32_from_bits(kSentinelBits); }
inline bool is_sentinel(float x) { return dsa::f32_bits(x) == kSentinelBits; }

// Writes the exactly representable `values` (fp8 codes by RNE, so pick representable values)
// and `scale` into token t of `block`, through the layout functions.
inline void put_token(dsa::IndexKCacheBuffer& c, std::int64_t block, std::int64_t t, const std::vector<float>& values,
                      float scale) {
  const auto& g = c.geo;
  std::uint8_t* page = c.bytes.data() + block * g.block_stride_bytes;
  for (int d = 0; d < g.head_dim; ++d)
    page[dsa::layout::IndexK::value_offset(g.layout, g.head_dim, t, d)] =
        dsa::f32_to_fp8(d < static_cast<int>(values.size()) ? values[static_cast<std::size_t>(d)] : 0.0f, g.fp8);
  dsa::store_f32(page + dsa::layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t), scale);
}

// Fills every byte of block `block` with NaN codes and every scale with NaN.
inline void poison_block(dsa::IndexKCacheBuffer& c, std::int64_t block) {
  const auto& g = c.geo;
  std::uint8_t* page = c.bytes.data() + block * g.block_stride_bytes;
  std::fill(page, page + g.page_tokens * g.head_dim, dsa::fp8_nan_code(g.fp8));
  for (std::int64_t t = 0; t < g.page_tokens; ++t)
    dsa::store_f32(page + dsa::layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t),
                   std::numeric_limits<float>::quiet_NaN());
}

struct PagedShape {
  std::int64_t batch = 1, next_n = 1, heads = 1, dim = 32;
  std::int32_t page = 16;
  IndexKLayout layout = IndexKLayout::standard;
  Fp8Format fp8 = Fp8Format::e4m3fn;
  ContextLens kind = ContextLens::per_sequence;
  KScaleAt at = KScaleAt::after_head_sum;
  std::vector<std::int32_t> ctx;  // [B] or [B][N]
  std::int64_t max_ctx_slack = 0;  // max_ctx = largest visible end + slack
  std::int64_t stride_slack = 0;   // row_stride = max_ctx + slack
  bool alias = false;              // draw block-table entries with replacement from a smaller pool
  bool ue8m0_scales = false;
  std::uint64_t seed = 1;
};

// Owns every tensor of one paged_mqa_logits call.
struct PagedCase {
  PagedShape shape;
  std::vector<std::uint8_t> q;
  std::vector<float> weights;
  std::vector<std::int32_t> block_table;
  std::int64_t max_blocks = 0;
  dsa::IndexKCacheBuffer cache;
  std::int64_t max_ctx = 0, row_stride = 0;
  std::vector<float> logits;

  explicit PagedCase(const dsa::IndexKGeometry& g) : cache(g) {}

  dsa::PagedMqaLogitsParams params() {
    dsa::PagedMqaLogitsParams p;
    p.batch = shape.batch;
    p.next_n = shape.next_n;
    p.num_heads = shape.heads;
    p.head_dim = shape.dim;
    p.q = q;
    p.q_fp8 = shape.fp8;
    p.weights = weights;
    p.context_lens_kind = shape.kind;
    p.context_lens = shape.ctx;
    p.block_table = block_table;
    p.max_blocks = max_blocks;
    p.cache = cache.view();
    p.reader_layout = cache.geo.layout;
    p.k_scale_at = shape.at;
    p.max_ctx = max_ctx;
    p.logits = logits;
    p.logits_row_stride = row_stride;
    return p;
  }
  void fill_sentinel() { std::fill(logits.begin(), logits.end(), sentinel()); }
};

// Visible end of row (b, i) before clipping to max_ctx.
inline std::int64_t raw_end(const PagedShape& s, std::int64_t b, std::int64_t i) {
  return std::max<std::int64_t>(0, s.kind == ContextLens::per_sequence
                                       ? s.ctx[static_cast<std::size_t>(b)] - s.next_n + i + 1
                                       : s.ctx[static_cast<std::size_t>(b * s.next_n + i)]);
}

// A random case: q and K from scaled normals (K through quantize_index_k, so scales are not
// powers of two unless ue8m0_scales), signed weights, a shuffled (optionally aliasing) block
// table, two spare NaN-poisoned blocks, NaN-poisoned tokens past each sequence's end, and
// garbage (−1, INT_MIN, INT_MAX, num_blocks) in every block-table entry no visible position needs.
inline PagedCase make_paged_case(const PagedShape& s) {
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exp_dist(-6, 4);
  const std::int64_t rows = s.batch * s.next_n;

  std::vector<std::int64_t> end(static_cast<std::size_t>(s.batch), 0), blocks(static_cast<std::size_t>(s.batch));
  std::int64_t max_end = 0;
  for (std::int64_t b = 0; b < s.batch; ++b) {
    for (std::int64_t i = 0; i < s.next_n; ++i) end[static_cast<std::size_t>(b)] = std::max(end[static_cast<std::size_t>(b)], raw_end(s, b, i));
    max_end = std::max(max_end, end[static_cast<std::size_t>(b)]);
    blocks[static_cast<std::size_t>(b)] = (end[static_cast<std::size_t>(b)] + s.page - 1) / s.page;
  }
  const std::int64_t needed = std::accumulate(blocks.begin(), blocks.end(), std::int64_t{0});
  const std::int64_t pool = s.alias ? std::max<std::int64_t>(1, needed / 2) : needed;
  const std::int64_t spare = 2;
  const std::int64_t num_blocks = pool + spare;
  auto geo = dsa::IndexKGeometry::packed(s.layout, s.fp8, num_blocks, s.page, static_cast<std::int32_t>(s.dim));
  geo.block_stride_bytes += 4 * static_cast<std::int64_t>(rng() % 3);  // sometimes padded pages
  PagedCase c(geo);
  c.shape = s;
  for (std::int64_t blk = 0; blk < num_blocks; ++blk) poison_block(c.cache, blk);

  // Block table: a random permutation of the pool (or draws with replacement when aliasing).
  std::vector<std::int32_t> perm(static_cast<std::size_t>(num_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);  // the spare blocks land anywhere in the pool
  c.max_blocks = 1 + (blocks.empty() ? 0 : *std::max_element(blocks.begin(), blocks.end()));
  c.block_table.assign(static_cast<std::size_t>(s.batch * c.max_blocks), 0);
  const std::int32_t garbage[] = {-1, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max(),
                                  static_cast<std::int32_t>(num_blocks)};
  std::int64_t next = 0;
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t j = 0; j < c.max_blocks; ++j) {
      auto& e = c.block_table[static_cast<std::size_t>(b * c.max_blocks + j)];
      if (j >= blocks[static_cast<std::size_t>(b)]) e = garbage[rng() % 4];
      else e = perm[static_cast<std::size_t>(s.alias ? static_cast<std::int64_t>(rng() % pool) : next++)];
    }

  // K: every position a row sees, written through quantize_index_k.
  std::vector<float> k_rows;
  std::vector<std::int64_t> slots;
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t t = 0; t < end[static_cast<std::size_t>(b)]; ++t) {
      const float mag = std::ldexp(1.0f, exp_dist(rng));
      for (std::int64_t d = 0; d < s.dim; ++d) k_rows.push_back(mag * normal(rng));
      slots.push_back(static_cast<std::int64_t>(c.block_table[static_cast<std::size_t>(b * c.max_blocks + t / s.page)]) *
                          s.page + t % s.page);
    }
  dsa::IndexKQuantParams qp;
  qp.ue8m0_scale = s.ue8m0_scales;
  dsa::quantize_index_k(k_rows, static_cast<std::int64_t>(slots.size()), slots, c.cache.span(), qp);

  // q: fp8 codes of scaled normals (finite); weights: signed normals of varied magnitude.
  c.q.resize(static_cast<std::size_t>(rows * s.heads * s.dim));
  for (auto& code : c.q) code = dsa::f32_to_fp8(8.0f * normal(rng), s.fp8);
  c.weights.resize(static_cast<std::size_t>(rows * s.heads));
  for (auto& w : c.weights) w = std::ldexp(normal(rng), exp_dist(rng));

  c.max_ctx = max_end + s.max_ctx_slack;
  c.row_stride = c.max_ctx + s.stride_slack;
  c.logits.assign(static_cast<std::size_t>(std::max<std::int64_t>(rows, 1) * c.row_stride), sentinel());
  return c;
}

// ---------------------------------------------------------------------------------------------
// Interim per-element bound on |fast − gold| for one visible logit (until oracle/budget takes
// over). Notation: u = 2^−24 (fp32), γ_n = n·u/(1 − n·u); the operands q_hd and k_d are the exact
// values the formula uses (k_d = k_operand: the decoded fp8 value, or bf16(k·s) under on_k_bf16,
// which both paths compute by the same fp32 operations and therefore agree on exactly);
// A_h = Σ_d |q_hd·k_d|, r_h = relu(q_h·k); σ = |s| (after_head_sum, per_head) or 1 (on_k_bf16).
//
// Fast (fp32), with no underflow or overflow:
//  * dot_h: D products of fp8 (4-bit significand) by fp8 or bf16 (≤ 8-bit) values are exact in
//    fp32; their sum in any order (Eigen's blocking) is off by ≤ γ_D·A_h.
//  * relu is 1-Lipschitz, so |relu(dot̂_h) − r_h| ≤ γ_D·A_h; per_head first rounds s·dot̂_h once
//    (relative u), which the factor below absorbs.
//  * w_h·(·) rounds once, the H-term head sum in order adds γ_{H−1}, the final s· (or the per-head
//    s·) rounds once: (1+u)²(1+γ_{H−1}) ≤ 1 + γ_{H+1}.
//  Hence |fast − exact| ≤ σ·Σ_h |w_h|·A_h·(γ_D + γ_{H+1} + γ_D·γ_{H+1}) (r_h ≤ A_h).
// Gold (fp64, u64 = 2^−53) is off from the exact value by ≤ σ·Σ|w_h|·A_h·γ64_{D+H+2}, then its
// single rounding to fp32 adds u·|logit| ≤ u·σ·Σ|w_h|·A_h.
// Gradual underflow adds at most 2^−150 absolute per fp32 operation; there are H·D + 2H + 2 of
// them, each later scaled by at most max(1,|w|)·max(1,σ): the absolute term η below.
inline double gamma(double n, double u) { return n * u / (1.0 - n * u); }

inline double fast_logit_bound(const float* q_values /*[H][D] decoded*/, const float* w, std::int64_t H, std::int64_t D,
                               const float* k_operand /*[D]*/, double sigma) {
  const double u = std::ldexp(1.0, -24), u64 = std::ldexp(1.0, -53);
  double sum = 0.0, wmax = 1.0;
  for (std::int64_t h = 0; h < H; ++h) {
    double a = 0.0;
    for (std::int64_t d = 0; d < D; ++d) a += std::fabs(static_cast<double>(q_values[h * D + d]) * k_operand[d]);
    sum += std::fabs(static_cast<double>(w[h])) * a;
    wmax = std::max(wmax, std::fabs(static_cast<double>(w[h])));
  }
  const double gD = gamma(static_cast<double>(D), u), gH = gamma(static_cast<double>(H + 1), u);
  const double rel = gD + gH + gD * gH + u + gamma(static_cast<double>(D + H + 2), u64);
  const double eta = std::ldexp(1.0, -149) * static_cast<double>(H * D + 2 * H + 3) * wmax * std::max(1.0, sigma);
  return sigma * sum * rel + eta;
}

// The bound of logit (row r, position t) of a paged case, reading the operands from the cache.
inline double paged_logit_bound(const PagedCase& c, std::int64_t r, std::int64_t t) {
  const auto& s = c.shape;
  const auto H = s.heads, D = s.dim;
  const std::int64_t b = r / s.next_n;
  const auto view = c.cache.view();
  const std::int64_t block = c.block_table[static_cast<std::size_t>(b * c.max_blocks + t / s.page)];
  const float scale = dsa::read_index_k_scale(view, block, t % s.page);
  std::vector<float> qv(static_cast<std::size_t>(H * D)), k(static_cast<std::size_t>(D));
  for (std::int64_t j = 0; j < H * D; ++j)
    qv[static_cast<std::size_t>(j)] = dsa::fp8_to_f32(c.q[static_cast<std::size_t>(r * H * D + j)], s.fp8);
  for (std::int64_t d = 0; d < D; ++d) {
    const float v = dsa::fp8_to_f32(dsa::read_index_k_code(view, block, t % s.page, static_cast<int>(d)), s.fp8);
    k[static_cast<std::size_t>(d)] =
        s.at == KScaleAt::on_k_bf16 ? dsa::mqa_formula::k_operand<KScaleAt::on_k_bf16>(v, scale) : v;
  }
  const double sigma = s.at == KScaleAt::on_k_bf16 ? 1.0 : std::fabs(static_cast<double>(scale));
  return fast_logit_bound(qv.data(), c.weights.data() + r * H, H, D, k.data(), sigma);
}

}  // namespace idx_test
