// The computation shared by paged_mqa_logits and mqa_logits (private to reference/src). Both
// operations reduce to a LogitsProblem — query rows in groups that read one K sequence — plus a
// token reader that yields the exactly decoded fp8 values and the fp32 scale of position t of a
// group's K sequence. The formula itself lives in dsa/mqa_logit_formula.hpp.
#pragma once

// Eigen must not spread a GEMM over threads: the OpenMP loops here already do, and a GEMM's
// arithmetic must not depend on the thread count (bit-exact metamorphic relations).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "dsa/formats.hpp"
#include "dsa/mqa_logit_formula.hpp"
#include "dsa/visible_range.hpp"

namespace dsa::detail {

struct LogitsProblem {
  std::int64_t rows = 0;
  std::int64_t heads = 0;
  std::int64_t dim = 0;
  const std::uint8_t* q = nullptr;  // [rows][H][D] fp8 codes
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  const float* weights = nullptr;        // [rows][H]
  const VisibleRange* ranges = nullptr;  // [rows], within [0, max_ctx)
  std::int64_t group_rows = 1;           // rows r and r' read the same K sequence iff r/group_rows == r'/group_rows
  KScaleAt k_scale_at = KScaleAt::after_head_sum;
  std::int64_t max_ctx = 0;
  float* logits = nullptr;  // [rows][row_stride]
  std::int64_t row_stride = 0;
};

inline constexpr float kMaskedLogit = -std::numeric_limits<float>::infinity();

// Exact fp32 value of every fp8 code.
inline const std::array<float, 256>& fp8_table(Fp8Format f) {
  static const auto make = [](Fp8Format fmt) {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[static_cast<std::size_t>(c)] = fp8_to_f32(static_cast<std::uint8_t>(c), fmt);
    return t;
  };
  static const std::array<float, 256> fn = make(Fp8Format::e4m3fn);
  static const std::array<float, 256> fnuz = make(Fp8Format::e4m3fnuz);
  return f == Fp8Format::e4m3fn ? fn : fnuz;
}

template <class F>
void dispatch_k_scale_at(KScaleAt at, F&& f) {
  switch (at) {
    case KScaleAt::after_head_sum: f(std::integral_constant<KScaleAt, KScaleAt::after_head_sum>{}); return;
    case KScaleAt::per_head: f(std::integral_constant<KScaleAt, KScaleAt::per_head>{}); return;
    case KScaleAt::on_k_bf16: f(std::integral_constant<KScaleAt, KScaleAt::on_k_bf16>{}); return;
  }
}

// ---------------------------------------------------------------------------------------------
// Gold: every logit on its own, in fp64, straight from the formula. `read_token(group, t, k)`
// writes the D exactly decoded values of position t into k (float) and returns its scale.
template <class ReadToken>
void gold_logits(const LogitsProblem& p, ReadToken&& read_token) {
  dispatch_k_scale_at(p.k_scale_at, [&](auto at_tag) {
    constexpr KScaleAt At = decltype(at_tag)::value;
    const auto H = p.heads, D = p.dim;
#pragma omp parallel
    {
      std::vector<double> q(static_cast<std::size_t>(H * D)), k(static_cast<std::size_t>(D));
      std::vector<float> k_values(static_cast<std::size_t>(D));
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t r = 0; r < p.rows; ++r) {
        for (std::int64_t j = 0; j < H * D; ++j) q[static_cast<std::size_t>(j)] = fp8_to_f32(p.q[r * H * D + j], p.q_fp8);
        const float* w = p.weights + r * H;
        const VisibleRange range = p.ranges[r];
        float* out = p.logits + r * p.row_stride;
        for (std::int64_t t = 0; t < p.max_ctx; ++t) {
          if (!range.contains(t)) {
            out[t] = kMaskedLogit;
            continue;
          }
          const float s = read_token(r / p.group_rows, t, k_values.data());
          for (std::int64_t d = 0; d < D; ++d)
            k[static_cast<std::size_t>(d)] = mqa_formula::k_operand<At>(k_values[static_cast<std::size_t>(d)], s);
          double acc = 0.0;
          for (std::int64_t h = 0; h < H; ++h) {
            double dot = 0.0;
            for (std::int64_t d = 0; d < D; ++d) dot += q[static_cast<std::size_t>(h * D + d)] * k[static_cast<std::size_t>(d)];
            acc += mqa_formula::head_term<At, double>(dot, w[h], s);
          }
          out[t] = static_cast<float>(mqa_formula::finish<At, double>(acc, s));
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Fast: per group and per block of kTokenBlock positions [c·kTokenBlock, (c+1)·kTokenBlock):
//   1. decode the block's K into a dense fp32 tile (zeros where no row of the group looks; those
//      tokens are never read), applying the reader model's k_operand;
//   2. one GEMM  S[TB][G·H] = K_tile[TB][D] · Q_group[G·H][D]^T;
//   3. per row: acc[t] += head_term(S[t][h], w[h], s[t]) for h = 0..H−1 in order, then finish.
// Block boundaries, tile shapes and GEMM shapes depend on positions only, never on page size,
// layout or block numbers, so those cannot change a bit of the result.
inline constexpr std::int64_t kTokenBlock = 256;

// `read_token(group, t, k)`: as for gold_logits. Called only for positions some row of the
// group sees or that lie between two such positions.
template <class ReadToken>
void fast_logits(const LogitsProblem& p, ReadToken&& read_token) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto H = p.heads, D = p.dim, G = p.group_rows;
  if (p.rows == 0) return;
  const std::int64_t groups = (p.rows + G - 1) / G;

  // Decoded queries [rows·H][D] and each group's span [lo, hi) of positions some row sees.
  std::vector<float> q(static_cast<std::size_t>(p.rows * H * D));
  const auto& table = fp8_table(p.q_fp8);
  std::vector<VisibleRange> group_span(static_cast<std::size_t>(groups));
#pragma omp parallel for schedule(static)
  for (std::int64_t g = 0; g < groups; ++g) {
    VisibleRange s{0, 0};
    for (std::int64_t r = g * G; r < std::min(p.rows, (g + 1) * G); ++r) {
      for (std::int64_t j = r * H * D; j < (r + 1) * H * D; ++j) q[static_cast<std::size_t>(j)] = table[p.q[j]];
      const VisibleRange v = p.ranges[r];
      if (v.empty()) continue;
      s = s.empty() ? v : VisibleRange{std::min(s.begin, v.begin), std::max(s.end, v.end)};
    }
    group_span[static_cast<std::size_t>(g)] = s;
  }

  // Positions outside the blocks of a row's group are masked.
  std::vector<std::pair<std::int64_t, std::int64_t>> tasks;  // (group, block)
  for (std::int64_t g = 0; g < groups; ++g) {
    const VisibleRange s = group_span[static_cast<std::size_t>(g)];
    if (s.empty()) continue;
    for (std::int64_t c = s.begin / kTokenBlock; c * kTokenBlock < s.end; ++c) tasks.emplace_back(g, c);
  }
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < p.rows; ++r) {
    const VisibleRange s = group_span[static_cast<std::size_t>(r / G)];
    const std::int64_t covered_begin = s.empty() ? p.max_ctx : s.begin / kTokenBlock * kTokenBlock;
    const std::int64_t covered_end = s.empty() ? p.max_ctx : (s.end + kTokenBlock - 1) / kTokenBlock * kTokenBlock;
    float* out = p.logits + r * p.row_stride;
    for (std::int64_t t = 0; t < std::min(covered_begin, p.max_ctx); ++t) out[t] = kMaskedLogit;
    for (std::int64_t t = covered_end; t < p.max_ctx; ++t) out[t] = kMaskedLogit;
  }

  dispatch_k_scale_at(p.k_scale_at, [&](auto at_tag) {
    constexpr KScaleAt At = decltype(at_tag)::value;
#pragma omp parallel
    {
      RowMajor k_tile(kTokenBlock, D);
      Eigen::MatrixXf dots(kTokenBlock, G * H);  // column r·H + h holds head h of row r, over positions
      std::vector<float> scale(kTokenBlock), acc(kTokenBlock);
#pragma omp for schedule(dynamic, 1)
      for (std::size_t task = 0; task < tasks.size(); ++task) {
        const auto [g, c] = tasks[task];
        const VisibleRange s = group_span[static_cast<std::size_t>(g)];
        const std::int64_t t0 = c * kTokenBlock;
        for (std::int64_t i = 0; i < kTokenBlock; ++i) {
          float* k = k_tile.row(i).data();
          if (!s.contains(t0 + i)) {
            std::fill(k, k + D, 0.0f);
            scale[static_cast<std::size_t>(i)] = 0.0f;
            continue;
          }
          const float sk = read_token(g, t0 + i, k);
          for (std::int64_t d = 0; d < D; ++d) k[d] = mqa_formula::k_operand<At>(k[d], sk);
          scale[static_cast<std::size_t>(i)] = sk;
        }
        const std::int64_t r0 = g * G, nr = std::min(G, p.rows - r0);
        const Eigen::Map<const RowMajor> q_group(q.data() + r0 * H * D, nr * H, D);
        dots.leftCols(nr * H).noalias() = k_tile * q_group.transpose();

        const std::int64_t t_end = std::min(t0 + kTokenBlock, p.max_ctx);
        for (std::int64_t i = 0; i < nr; ++i) {
          const std::int64_t r = r0 + i;
          const VisibleRange v = p.ranges[r];
          float* out = p.logits + r * p.row_stride;
          if (v.end <= t0 || v.begin >= t_end) {  // nothing visible in this block
            for (std::int64_t t = t0; t < t_end; ++t) out[t] = kMaskedLogit;
            continue;
          }
          const float* w = p.weights + r * H;
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (std::int64_t h = 0; h < H; ++h) {
            const float* col = dots.col(i * H + h).data();
            const float wh = w[h];
            for (std::int64_t j = 0; j < kTokenBlock; ++j)
              acc[static_cast<std::size_t>(j)] += mqa_formula::head_term<At, float>(col[j], wh, scale[static_cast<std::size_t>(j)]);
          }
          for (std::int64_t t = t0; t < t_end; ++t)
            out[t] = v.contains(t) ? mqa_formula::finish<At, float>(acc[static_cast<std::size_t>(t - t0)],
                                                                     scale[static_cast<std::size_t>(t - t0)])
                                   : kMaskedLogit;
        }
      }
    }
  });
}

}  // namespace dsa::detail
