// The attention budget of BUDGETS.md §2 per (row, head, d): the valid slots' exact logits z_j,
// absolute dot sums Z_j and probabilities p_j, then per output dim Σ p_j|v_jd| and
// Σ p_j|v_jd|ε_j, handed to the cores of budget.hpp. Shared by sparse_mla_decode and
// sparse_mla_prefill (their *_budget.cpp files build the AttentionBudgetProblem).
#include "sparse_mla_budget_rows.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "dsa/error.hpp"
#include "dsa/formats.hpp"

namespace dsa::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A budget is a bound; a NaN one (only possible next to a non-finite gold value, which is judged
// by the exact rule) must never let an element through.
double sane(double b) { return b >= 0.0 ? b : 0.0; }

}  // namespace

void attention_budget(const AttentionBudgetProblem& p, const KernelPrecision& k, const AttentionClaims& claims,
                      SparseMlaBudget& b) {
  const std::int64_t T = p.T;
  const std::int32_t H = p.H;
  const int D = p.D_qk, Dv = p.D_v;
  if (claims.num_splits < 0) throw InvalidArgument("claims.num_splits", fmt::format("must be ≥ 0 (got {})", claims.num_splits));
  if (claims.tile_slots < 0) throw InvalidArgument("claims.tile_slots", fmt::format("must be ≥ 0 (got {})", claims.tile_slots));
  const int splits = claims.num_splits == 0 ? kAnySplits : claims.num_splits;
  b.out.assign(static_cast<std::size_t>(T * H * Dv), 0.0);
  b.lse.assign(static_cast<std::size_t>(T * H), 0.0);
  b.max_logits.assign(static_cast<std::size_t>(T * H), 0.0);
  const bool base2 = p.conv.lse_base == LseBase::two;

#pragma omp parallel
  {
    std::vector<float> token(static_cast<std::size_t>(D));
    std::vector<double> kv;      // [n][D]
    std::vector<double> qt;      // [D][H]
    std::vector<double> z, za;   // [n][H]
    std::vector<double> zh, zah, ph, eps;  // [n] of one head
    std::vector<double> o(static_cast<std::size_t>(Dv)), pav(static_cast<std::size_t>(Dv)),
        pev(static_cast<std::size_t>(Dv));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t r = 0; r < T; ++r) {
      kv.clear();
      p.gather(r, token, kv);
      const std::int64_t n = static_cast<std::int64_t>(kv.size()) / D;
      qt.assign(static_cast<std::size_t>(D) * H, 0.0);
      for (std::int32_t h = 0; h < H; ++h)
        for (int d = 0; d < D; ++d) qt[static_cast<std::size_t>(d) * H + h] = bf16_to_f32(p.q[(r * H + h) * D + d]);
      z.assign(static_cast<std::size_t>(n * H), 0.0);
      za.assign(static_cast<std::size_t>(n * H), 0.0);
      for (std::int64_t j = 0; j < n; ++j) {
        double* zj = &z[static_cast<std::size_t>(j * H)];
        double* zaj = &za[static_cast<std::size_t>(j * H)];
        for (int d = 0; d < D; ++d) {
          const double kd = kv[static_cast<std::size_t>(j * D + d)];
          const double akd = std::fabs(kd);
          const double* qd = &qt[static_cast<std::size_t>(d) * H];
          for (std::int32_t h = 0; h < H; ++h) {
            zj[h] += qd[h] * kd;
            zaj[h] += std::fabs(qd[h]) * akd;
          }
        }
        for (std::int32_t h = 0; h < H; ++h) {
          zj[h] *= p.sm_scale;
          zaj[h] *= p.sm_scale;
        }
      }
      const int tiles = n == 0 ? 1
                        : claims.tile_slots == 0
                            ? static_cast<int>(n)
                            : static_cast<int>((n + claims.tile_slots - 1) / claims.tile_slots);
      for (std::int32_t h = 0; h < H; ++h) {
        const std::size_t rh = static_cast<std::size_t>(r * H + h);
        const double sink = p.sink != nullptr ? static_cast<double>(p.sink[h]) : -kInf;
        if (n == 0) {
          // Exact: out = 0, lse per lse_empty (or the sink itself when folded in, whose base-2
          // conversion rounds), max_logits = −inf.
          b.lse[rh] = std::isfinite(b.gold.lse[rh])
                          ? sane(lse_convention_budget(0.0, -kInf, sink, p.conv.sink_in_lse, base2, k))
                          : 0.0;
          continue;
        }
        zh.resize(static_cast<std::size_t>(n));
        zah.resize(static_cast<std::size_t>(n));
        ph.resize(static_cast<std::size_t>(n));
        eps.resize(static_cast<std::size_t>(n));
        double m = -kInf;
        for (std::int64_t j = 0; j < n; ++j) {
          zh[static_cast<std::size_t>(j)] = z[static_cast<std::size_t>(j * H + h)];
          zah[static_cast<std::size_t>(j)] = za[static_cast<std::size_t>(j * H + h)];
          m = std::max(m, zh[static_cast<std::size_t>(j)]);
        }
        double l = 0.0;
        for (std::int64_t j = 0; j < n; ++j) l += std::exp(zh[static_cast<std::size_t>(j)] - m);
        const double lse = m + std::log(l);
        for (std::int64_t j = 0; j < n; ++j) ph[static_cast<std::size_t>(j)] = std::exp(zh[static_cast<std::size_t>(j)] - lse);
        const AttentionRowStats stats{zh, zah, ph, D, splits, tiles};
        const double lse_shift = probability_error_bounds(stats, k, eps);
        const double lse_budget = attention_lse_budget(lse_shift, std::fabs(lse), static_cast<int>(n), stats, k);

        std::fill(o.begin(), o.end(), 0.0);
        std::fill(pav.begin(), pav.end(), 0.0);
        std::fill(pev.begin(), pev.end(), 0.0);
        double max_score_error = 0.0, max_abs_v = 0.0;
        for (std::int64_t j = 0; j < n; ++j) {
          const double pj = ph[static_cast<std::size_t>(j)], ej = eps[static_cast<std::size_t>(j)];
          max_score_error = std::max(max_score_error, score_error_bound(zah[static_cast<std::size_t>(j)], D, k));
          const double* v = &kv[static_cast<std::size_t>(j * D)];
          for (int d = 0; d < Dv; ++d) {
            const double pv = pj * std::fabs(v[d]);
            max_abs_v = std::max(max_abs_v, std::fabs(v[d]));
            o[d] += pj * v[d];
            pav[d] += pv;
            pev[d] += pv * ej;
          }
        }
        // The sink: f = 1/(1 + e^{sink − lse}); +inf ⇒ out = 0 exactly (budget 0).
        const double f = sink == -kInf ? 1.0 : sink == kInf ? 0.0 : 1.0 / (1.0 + std::exp(sink - lse));
        double* bo = &b.out[rh * Dv];
        for (int d = 0; d < Dv; ++d) {
          if (f == 0.0 || !std::isfinite(b.gold.out[rh * Dv + d])) continue;
          double e = attention_out_budget(pev[d], pav[d], std::fabs(o[d]), static_cast<int>(n), stats, k);
          if (f < 1.0) e = sink_out_budget(e, std::fabs(o[d]), f, lse_budget, k);
          e += underflow_out_allowance(n, splits, max_abs_v);
          bo[d] = sane(e);
        }
        if (std::isfinite(b.gold.lse[rh]))
          b.lse[rh] = sane(lse_convention_budget(lse_budget, lse, sink, p.conv.sink_in_lse, base2, k));
        if (std::isfinite(b.gold.max_logits[rh]))
          b.max_logits[rh] = sane(max_logit_budget(max_score_error, std::fabs(m), k));
      }
    }
  }
}

CaseResult judge_attention(const SparseMlaBudget& b, const SparseMlaKernelOutputs& got, const JudgeOptions& options,
                           const std::vector<std::string>& row_names, const std::vector<std::int64_t>& row_extents) {
  const std::size_t rows = b.gold.lse.size();
  const std::size_t n_out = b.gold.out.size();
  if (got.out.size() != n_out)
    throw InvalidArgument("out", fmt::format("has {} elements; the case needs T·H·D_v = {}", got.out.size(), n_out));
  if (!got.lse.empty() && got.lse.size() != rows)
    throw InvalidArgument("lse", fmt::format("has {} elements; the case needs T·H = {}", got.lse.size(), rows));
  if (!got.max_logits.empty() && got.max_logits.size() != rows)
    throw InvalidArgument("max_logits",
                          fmt::format("has {} elements; the case needs T·H = {}", got.max_logits.size(), rows));
  CaseResult res;
  TensorShape row_shape{row_names, row_extents};
  TensorShape out_shape = row_shape;
  out_shape.names.push_back("d");
  out_shape.extents.push_back(b.gold.D_v);

  std::vector<double> g(n_out);
  std::vector<std::uint8_t> unwritten;
  for (std::size_t i = 0; i < n_out; ++i) g[i] = bf16_to_f32(got.out[i]);
  if (options.sentinel_bf16) {
    unwritten.resize(n_out);
    for (std::size_t i = 0; i < n_out; ++i) unwritten[i] = got.out[i] == *options.sentinel_bf16;
  }
  res.outputs.push_back(judge_output("out", g, b.gold.out, b.out, out_shape, unwritten, {}, res.histogram));

  auto f32_output = [&](const char* name, std::span<const float> v, const std::vector<double>& want,
                        const std::vector<double>& budget) {
    if (v.empty()) return;
    std::vector<double> gv(v.size());
    std::vector<std::uint8_t> un;
    for (std::size_t i = 0; i < v.size(); ++i) gv[i] = v[i];
    if (options.sentinel_f32) {
      un.resize(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) un[i] = f32_bits(v[i]) == *options.sentinel_f32;
    }
    res.outputs.push_back(judge_output(name, gv, want, budget, row_shape, un, {}, res.histogram));
  };
  f32_output("lse", got.lse, b.gold.lse, b.lse);
  f32_output("max_logits", got.max_logits, b.gold.max_logits, b.max_logits);
  return res;
}

}  // namespace dsa::detail
