// Interim per-element bound on |fast − gold| for sparse MLA (until the judging issue's budgets
// replace it). Every term comes from a unit roundoff and the element's own inputs; the only
// constants are the fp32 exp/log accuracies, which a test measures (kFastExpUlps, kFastLogUlps).
//
// Derivation. u = 2^−24 (fp32), u_b = 2^−8 (bf16), γ_k = k·u / (1 − k·u). Per (row, head): the
// valid slots U (n of them), exact logits z_j, gold weights p_j = exp(z_j − lse) (Σ p_j = 1),
// A_j = sm_scale·Σ_d |q_d|·|k_jd| (stats.max_abs_dot = max A_j), R = max z − min z, and per
// output dim d: abs_d = Σ p_j |v_jd| and dev_d = Σ p_j |v_jd − o_d|. Operands are exactly gold's
// (same reader model), so only fast's arithmetic is charged. nt ≤ ⌈n / kMlaTileSlots⌉ + 1 key
// tiles per chunk; S = num_splits.
//
//  1. Scores. ẑ_j = fl(sm·fl(⟨q, k_j⟩)) in any summation order: |ẑ_j − z_j| ≤ γ_{D+1}·A_j ≤ δ.
//  2. Weights. Fast's unnormalized weight of slot j is exp(ẑ_j − m_t)·Π α, with roundings in the
//     subtraction (≤ u·(R + 2δ)), in exp (c_e·u each, once for the slot and once per later tile
//     for α), and in the α arguments (Σ|m_old − m_new| ≤ R + 2δ). So each weight carries a
//     relative factor e^{η_j}, |η_j| ≤ ε_w = 2u·(R + 2δ) + c_e·u·(nt + 1).
//  3. Softmax perturbation. With log-perturbations |Δ_j| ≤ Δ = δ + ε_w the normalized weights
//     w'_j satisfy w'_j / p_j ∈ [e^{−2Δ}, e^{2Δ}], and since Σ w'_j = Σ p_j = 1,
//     |Σ (w'_j − p_j) v_jd| = |Σ (w'_j − p_j)(v_jd − o_d)| ≤ (e^{2Δ} − 1)·dev_d.
//  4. Accumulation. O_d and l are sums of ≤ n products with ≤ 6·nt extra roundings (tile sums,
//     α scalings, lane folds): |Ô_d − Σ p̃_j v_jd| ≤ γ_a·Σ p̃_j |v_jd|, l̂ = l(1 + θ), |θ| ≤ γ_a,
//     γ_a = γ_{n+6nt}; then one division. Single pass:
//         B_1 = (e^{2Δ} − 1)·dev_d + γ_a·e^{2Δ}·abs_d + (γ_a + u)·|o_d|.
//  5. Split-KV (S > 1). Each partial obeys 4 with its own chunk statistics; Σ_i W_i·dev_i ≤ 2·dev_d
//     and Σ_i W_i·|o_i| ≤ abs_d. The partial lse_i carry errors ε_L (see 7) and the combine adds
//     exp/log/sum roundings, so the combine weights carry relative factors e^{ζ_i},
//     |ζ_i| ≤ Δ_c = 2ε_L + (2c_e + c_l + S + 4)·u·(1 + L), L = |lse| + R + ln n + 2δ ≥ |lse_i|;
//     Σ W_i (e^{ζ_i} − 1) o_i ≤ (e^{Δ_c} − 1)(dev_d + |o_d|); the S-term sum adds γ_S·abs_d:
//         B_S = 2(e^{2Δ} − 1)·dev_d + (γ_a·e^{2Δ} + γ_a + u + γ_S)·abs_d + (e^{Δ_c} − 1)(dev_d + |o_d|).
//  6. Sink (finite). f = 1/(1 + e^{sink − lse}) is computed with relative error
//     (1 − f)(ε_L + u·|sink − lse| + c_e·u) + 2u; out = f·o. ±inf sinks are exact paths.
//  7. lse (natural): ε_L = δ + ε_w + γ_a + c_l·u·(1 + ln n) + 2u·|lse| (scores, weights, the sum,
//     the log, the add); split adds Δ_c. sink_in_lse adds (2c_e + c_l + 4)·u·(1 + |lse| + |sink|);
//     base 2 scales by 1/ln 2 and adds 2u·|lse₂|. max_logits: δ (a max of perturbed values).
//  8. Output rounding: bf16 RNE adds u_b·(|gold| + B); fp32 subnormals are covered by adding
//     2^−126. Products of first-order terms are covered by a final factor 1 + 2^−10 (every first
//     order term is < 2^−10 relative in any case this bound is meant for).
// Empty rows, ±inf sinks and non-finite gold values are exact (bound 0).
#include "dsa/sparse_mla_interim_bound.hpp"

#include <cmath>
#include <limits>

namespace dsa {

namespace {
constexpr double u = 0x1p-24;
constexpr double u_bf16 = 0x1p-8;
constexpr double kTiny = 0x1p-126;
constexpr double kSecondOrder = 1.0 + 0x1p-10;
double gamma(double k) { return k * u / (1.0 - k * u); }
}  // namespace

SparseMlaBound sparse_mla_interim_bound(const SparseMlaGold& gold, const SparseMlaGoldStats& st,
                                        const MlaConventions& conv, int num_splits) {
  const double ce = kFastExpUlps, cl = kFastLogUlps;
  const std::int64_t T = st.T;
  const std::int32_t H = st.H;
  const int Dv = st.D_v;
  const double S = num_splits;
  SparseMlaBound b;
  b.out.assign(gold.out.size(), 0.0);
  b.lse.assign(gold.lse.size(), 0.0);
  b.max_logits.assign(gold.max_logits.size(), 0.0);
  for (std::int64_t r = 0; r < T; ++r) {
    const double n = st.valid_slots[static_cast<std::size_t>(r)];
    if (n == 0) {  // empty row: exact, but for a sink-only lse converted to base 2
      for (std::int32_t h = 0; h < H; ++h) {
        const double g_lse = gold.lse[static_cast<std::size_t>(r * H + h)];
        if (std::isfinite(g_lse) && conv.lse_base == LseBase::two)
          b.lse[static_cast<std::size_t>(r * H + h)] = 3 * u * std::fabs(g_lse) + kTiny;
      }
      continue;
    }
    const double nt = std::ceil(n / kMlaTileSlots) + 1;
    const double ga = gamma(n + 6 * nt);
    for (std::int32_t h = 0; h < H; ++h) {
      const std::size_t rh = static_cast<std::size_t>(r * H + h);
      const double lse = st.lse_nat[rh];
      const double delta = gamma(st.D_qk + 1) * st.max_abs_dot[rh];
      const double R = st.logit_range[rh];
      const double eps_w = 2 * u * (R + 2 * delta) + ce * u * (nt + 1);
      const double Delta = delta + eps_w;
      const double e2 = std::exp(2 * Delta);
      double eps_L = delta + eps_w + ga + cl * u * (1 + std::log(n)) + 2 * u * std::fabs(lse);
      double Delta_c = 0.0;
      if (num_splits > 1) {
        const double L = std::fabs(lse) + R + std::log(n) + 2 * delta;
        Delta_c = 2 * eps_L + (2 * ce + cl + S + 4) * u * (1 + L);
        eps_L += Delta_c;
      }
      const double f = st.sink_factor[rh];
      // The sink's own relative error (finite sinks only: f ∈ (0, 1)).
      double sink_rel = 0.0;
      if (f > 0.0 && f < 1.0) {
        const double sink_minus_lse = std::log(1.0 / f - 1.0);
        sink_rel = (1 - f) * (eps_L + u * std::fabs(sink_minus_lse) + ce * u) + 2 * u;
      }
      for (int d = 0; d < Dv; ++d) {
        const std::size_t i = rh * Dv + d;
        const double g = gold.out[i];
        if (!std::isfinite(g) || f == 0.0) continue;  // exact paths
        const double abs_d = st.abs_v[i], dev_d = st.dev_v[i];
        const double o = f > 0.0 ? g / f : 0.0;  // before the sink
        double pre = num_splits == 1
                         ? (e2 - 1) * dev_d + ga * e2 * abs_d + (ga + u) * std::fabs(o)
                         : 2 * (e2 - 1) * dev_d + (ga * e2 + ga + u + gamma(S)) * abs_d +
                               std::expm1(Delta_c) * (dev_d + std::fabs(o));
        pre = f * pre + std::fabs(g) * sink_rel;
        b.out[i] = kSecondOrder * (pre + u_bf16 * (std::fabs(g) + pre)) + kTiny;
      }
      // lse as returned.
      const double g_lse = gold.lse[rh];
      if (std::isfinite(g_lse)) {
        double e = eps_L;
        if (conv.sink_in_lse && f < 1.0) {
          const double sink = f > 0.0 ? lse + std::log(1.0 / f - 1.0) : 0.0;
          e += (2 * ce + cl + 4) * u * (1 + std::fabs(lse) + std::fabs(sink));
        }
        if (conv.lse_base == LseBase::two) e = e / std::log(2.0) + 2 * u * std::fabs(g_lse);
        b.lse[rh] = kSecondOrder * e + kTiny;
      }
      if (std::isfinite(gold.max_logits[rh])) b.max_logits[rh] = kSecondOrder * delta + kTiny;
    }
  }
  return b;
}

}  // namespace dsa
