// Op-independent cores of the a-priori error budgets (derivation: oracle/BUDGETS.md).
#include "dsa/budget.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "dsa/error.hpp"

namespace dsa {

double gamma(double n, double u) {
  const double nu = n * u;
  return nu < 0.5 ? nu / (1.0 - nu) : std::numeric_limits<double>::infinity();
}

double score_error_bound(double z_abs, int dim_qk, const KernelPrecision& k) {
  // D products, D−1 additions, and the sm_scale multiplication (or a folded scale·log2 e that
  // is itself rounded): γ_{D+2}. (eq. 2.1)
  return gamma(dim_qk + 2, k.u_acc) * z_abs;
}

namespace {
// Per-key exponent error δ'_j (eq. 2.2): the score error plus the rounding of the exponent
// argument ẑ_j − m̂ (a number of size ≤ |z_j − z_max| + 1) and of the arguments m_old − m_new of
// the rescalings after key j's tile, which telescope to at most |z_j − z_max|.
double exponent_error(double z, double z_abs, double z_max, int dim_qk, const KernelPrecision& k) {
  return score_error_bound(z_abs, dim_qk, k) + k.u_acc * (2.0 * std::fabs(z - z_max) + 1.0);
}

// The normalisation and rescaling terms shared by every p_j (eq. 2.3): the sum l of n
// exponentials over `tiles` rescalings, one exponential per key and per rescale.
double normalisation_error(int n, const AttentionRowStats& s, const KernelPrecision& k) {
  return gamma(n + 2 * s.tiles + 2, k.u_acc) + (2 + s.tiles) * k.u_exp;
}

// The combine of num_splits partials (eq. 2.8): weights exp(lse_i − lse) and the weighted sum.
double combine_error(const AttentionRowStats& s, const KernelPrecision& k) {
  if (s.num_splits <= 1) return 0.0;
  return gamma(s.num_splits + 3, k.u_acc) + 2 * k.u_exp;
}
}  // namespace

double probability_error_bounds(const AttentionRowStats& s, const KernelPrecision& k, std::span<double> eps) {
  const std::size_t n = s.z.size();
  if (s.z_abs.size() != n || s.p.size() != n || eps.size() != n)
    throw InvalidArgument("AttentionRowStats", "z, z_abs, p and eps must have the same length");
  double z_max = -std::numeric_limits<double>::infinity();
  for (double z : s.z) z_max = std::max(z_max, z);
  double mean = 0.0, worst = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double d = exponent_error(s.z[j], s.z_abs[j], z_max, s.dim_qk, k);
    eps[j] = d;
    mean += s.p[j] * d;
    worst = std::max(worst, d);
  }
  // lse of the perturbed scores moves by Σ p δ' to first order; the second-order remainder is
  // below (max δ')². With splits, a partial's lse moves by at most max δ' and the final lse by
  // Σ p δ' — the kernel's chunk boundaries are not known a priori, so the worst chunk is charged.
  const double lse_shift = mean + worst * worst;
  const double chunk_shift = s.num_splits > 1 ? 2.0 * worst : 0.0;
  const double common = lse_shift + chunk_shift + normalisation_error(static_cast<int>(n), s, k) + combine_error(s, k);
  for (std::size_t j = 0; j < n; ++j) eps[j] += common;
  return lse_shift;
}

double attention_out_budget(double p_eps_abs_v, double p_abs_v, double out_abs, int n, const AttentionRowStats& s,
                            const KernelPrecision& k) {
  // Σ p|v|ε (probabilities) + Σ p|v|·(u_p + γ(u_acc)) (rounding P, the P·V sum, the division by
  // l and the tile rescalings) + combine, then the output rounding of the perturbed value. (eq. 2.5)
  const double pv = gamma(n + 2 * s.tiles + 2, k.u_acc) + k.u_p + combine_error(s, k);
  const double e = p_eps_abs_v + p_abs_v * pv;
  return e * (1.0 + k.u_out) + k.u_out * out_abs;
}

double attention_lse_budget(double lse_score_error, double lse_abs, int n, const AttentionRowStats& s,
                            const KernelPrecision& k) {
  // lse = m + ln l: the scores' shift, the relative error of l (→ absolute error of ln l), the
  // log evaluation, the base changes (log2 e, ln 2) and the add, then fp32 output. (eq. 2.4)
  const double l_rel = normalisation_error(n, s, k) + combine_error(s, k);
  const double chunk = s.num_splits > 1 ? lse_score_error : 0.0;
  return lse_score_error + chunk + l_rel + k.u_exp * (1.0 + lse_abs) + 4 * k.u_acc * lse_abs + k.u_lse_out * lse_abs;
}

double underflow_out_allowance(std::int64_t valid_slots, int num_splits, double max_abs_v) {
  // (n + splits + 2)·2^-126·max|v| + 2^-133 (eq. 2.11).
  return static_cast<double>(valid_slots + num_splits + 2) * 0x1p-126 * max_abs_v + 0x1p-133;
}

double max_logit_budget(double max_score_error, double max_logit_abs, const KernelPrecision& k) {
  return max_score_error + k.u_lse_out * max_logit_abs;  // (eq. 2.6)
}

double sink_out_budget(double out_budget, double out_abs_unsunk, double f, double lse_budget, const KernelPrecision& k) {
  // out' = f·out, f = 1/(1 + e^{sink − lse}); df/dlse = f(1 − f). The argument sink − lse is
  // itself rounded once (|sink − lse| = |ln(1/f − 1)|). (eq. 2.7)
  const double one_minus_f = 1.0 - f;
  const double arg = f > 0.0 && one_minus_f > 0.0 ? std::fabs(std::log(one_minus_f / f)) : 0.0;
  const double df = f * one_minus_f * (lse_budget + k.u_acc * arg) + f * (k.u_exp + 3 * k.u_acc);
  return f * out_budget + out_abs_unsunk * df + k.u_out * f * out_abs_unsunk;
}

double lse_convention_budget(double lse_budget_nat, double lse_nat, double sink, bool sink_in_lse, bool base2,
                             const KernelPrecision& k) {
  // (eq. 2.9) Folding a finite sink in: L' = ln(e^L + e^sink) = m + ln(e^{L−m} + e^{sink−m}),
  // m = max(L, sink); ∂L'/∂L = f ≤ 1. Its evaluation rounds the argument sink − L, two
  // exponentials, the sum, the log of a number in [1, 2] and the add of m.
  double b = lse_budget_nat;
  double returned = lse_nat;
  if (sink_in_lse && std::isfinite(sink)) {
    if (std::isinf(lse_nat) && lse_nat < 0) {
      b = 0.0;  // empty row: L' = sink, exactly
      returned = sink;
    } else {
      const double m = std::max(lse_nat, sink);
      returned = m + std::log(std::exp(lse_nat - m) + std::exp(sink - m));
      const double f = std::exp(lse_nat - returned);
      b = f * lse_budget_nat + k.u_acc * (std::fabs(lse_nat - sink) + 3.0) + 3 * k.u_exp +
          (k.u_acc + k.u_lse_out) * std::fabs(returned);
    }
  }
  if (base2) {
    // L / ln 2 as L · fl(1/ln 2): the constant and the product round once each, then fp32 output.
    const double l2 = returned / std::numbers::ln2;
    b = b / std::numbers::ln2 + (2 * k.u_acc + k.u_lse_out) * std::fabs(l2);
  }
  return b;
}

double logit_budget(std::span<const double> abs_w, std::span<const double> abs_dot_terms,
                    std::span<const double> relu_abs, double abs_scale, double logit_abs, int head_dim,
                    const KernelPrecision& k) {
  const std::size_t h = abs_w.size();
  if (abs_dot_terms.size() != h || relu_abs.size() != h)
    throw InvalidArgument("logit_budget", "abs_w, abs_dot_terms and relu_abs must have one entry per head");
  // Per head: the dot product (γ_D·A_h), relu is 1-Lipschitz, then w·relu and the head sum
  // (γ_{H+2} on Σ|w|(r + γ_D A)), then the K scale (one more rounding). (eq. 3.1)
  const double g_d = gamma(head_dim, k.u_acc);
  const double g_h = gamma(static_cast<double>(h) + 3, k.u_acc);
  double e = 0.0;
  for (std::size_t i = 0; i < h; ++i) {
    const double dot_err = g_d * abs_dot_terms[i];
    e += abs_w[i] * (dot_err + g_h * (relu_abs[i] + dot_err));
  }
  return abs_scale * e + k.u_out * logit_abs;
}

}  // namespace dsa
