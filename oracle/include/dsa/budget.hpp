// A-priori per-element error budgets (SPEC §10.2), computed from each case's own inputs. The
// derivation is in oracle/BUDGETS.md; each function below cites the equation it implements.
// These are the op-independent cores; oracle/src/<op>_budget.cpp binds them to an op's params.
#pragma once

#include <cstdint>
#include <span>

namespace dsa {

// Unit roundoffs.
inline constexpr double kUnitFp32 = 0x1p-24;
inline constexpr double kUnitBf16 = 0x1p-8;
inline constexpr double kUnitFp8E4M3 = 0x1p-4;

// γ_n = n·u / (1 − n·u) (Higham): the bound on the relative error of an n-term recursive sum or
// dot product in precision u. Any summation order (pairwise, tree, tensor-core) satisfies it.
double gamma(double n, double u);

// What a kernel under test promises about its arithmetic (the precisions that the budget
// charges; the operands themselves are fixed by the reader model and cost nothing).
struct KernelPrecision {
  // Accumulator unit roundoff. Tensor-core accumulation may truncate instead of rounding to
  // nearest, which doubles the unit: the project's default charges 2·u_fp32.
  double u_acc = 2 * kUnitFp32;
  // Rounding of the probabilities P before the P·V product (bf16 in FlashMLA-style kernels,
  // 0 when P stays fp32, kUnitFp8E4M3 for fp8 P).
  double u_p = kUnitBf16;
  // Output rounding (bf16 outputs: kUnitBf16; fp32 outputs: kUnitFp32).
  double u_out = kUnitBf16;
  // Relative error of the exponential/logarithm evaluations (ex2.approx: ≤ 2^-22 relative).
  double u_exp = 0x1p-22;
  // Whether the kernel's outputs are compared in the lse of its own rounding (fp32 lse).
  double u_lse_out = kUnitFp32;
};

// ---- Attention (sparse MLA decode / prefill / split-KV), BUDGETS.md §2 ----------------------
// Per (row, head): the selected keys j ∈ U with exact logits z_j (natural units, after
// sm_scale), their absolute dot sums Z_j = sm_scale·Σ_d |q_d|·|k_jd| and the exact
// probabilities p_j = exp(z_j − lse). `num_splits` ≥ 1 counts combine terms; `tiles` is the
// number of key tiles of the online softmax (rescalings).
struct AttentionRowStats {
  std::span<const double> z;      // [n]
  std::span<const double> z_abs;  // [n] Z_j
  std::span<const double> p;      // [n] exact probabilities (sum 1)
  int dim_qk = 576;
  int num_splits = 1;
  int tiles = 1;
};

// δz_j bound (BUDGETS.md eq. 2.1): γ_{D+2}(u_acc)·Z_j.
double score_error_bound(double z_abs, int dim_qk, const KernelPrecision& k);

// Relative perturbation bound of every p_j (eq. 2.3): ε_j = δz_j + Σ_k p_k δz_k + c·(u_exp + u_acc)
// with c covering the max subtraction, exponential, normalisation and rescalings.
// Writes ε_j into eps[j]; returns Σ_k p_k δz_k (the lse error from the scores).
double probability_error_bounds(const AttentionRowStats& s, const KernelPrecision& k, std::span<double> eps);

// Budget of out[d] before the sink (eq. 2.5):
//   Σ_j p_j·|v_jd|·(ε_j + u_p + γ_{n+tiles}(u_acc) + combine(num_splits)) + u_out·|out_d|
// `pv_abs` = Σ_j p_j·|v_jd|·(ε_j) is passed pre-summed by the caller together with
// `p_abs_v` = Σ_j p_j·|v_jd|, so that the O(n·D_v) work is done once per element.
double attention_out_budget(double p_eps_abs_v, double p_abs_v, double out_abs, int n, const AttentionRowStats& s,
                            const KernelPrecision& k);

// Budget of the returned lse (eq. 2.4): Σ_k p_k δz_k + γ_n(u_acc) + u_exp·(1 + |lse|) + u_lse_out·|lse|,
// plus the combine's log-sum-exp terms when split.
double attention_lse_budget(double lse_score_error, double lse_abs, int n, const AttentionRowStats& s,
                            const KernelPrecision& k);

// Absolute underflow allowance of out (eq. 2.11), added after the sink: fp32 exponentials of
// very negative arguments flush or clamp (≤ 2^-126 absolute per probability and per split
// weight), a sink far above lse overflows exp and zeroes the factor, and bf16 rounds below its
// normal range. None of it is relative to |out|, so no relative term covers a tiny exact output.
double underflow_out_allowance(std::int64_t valid_slots, int num_splits, double max_abs_v);

// Budget of max_logits (prefill; eq. 2.6): max over j of δz_j plus output rounding.
double max_logit_budget(double max_score_error, double max_logit_abs, const KernelPrecision& k);

// The sink applied after normalisation, f = 1 / (1 + exp(sink − lse)) (eq. 2.7): the budget of
// f·out given the budget of out, |out| and the lse error bound.
double sink_out_budget(double out_budget, double out_abs_unsunk, double f, double lse_budget, const KernelPrecision& k);

// The returned lse under the conventions of SPEC §9 (eq. 2.9): from the budget of the natural,
// sink-free lse (attention_lse_budget; −inf `lse_nat` for an empty row), the budget of
// ln(e^lse + e^sink) when the sink is folded in (`sink` finite; ±inf sinks are exact rules), then
// of the conversion to base 2.
double lse_convention_budget(double lse_budget_nat, double lse_nat, double sink, bool sink_in_lse, bool base2,
                             const KernelPrecision& k);

// ---- Indexer logits (paged and non-paged), BUDGETS.md §3 ------------------------------------
// logit = s_K·Σ_h w_h·relu(Σ_d q_hd·k_d). Given, per head, A_h = Σ_d |q_hd·k_d| and
// r_h = |relu(dot_h)|, and |w_h|:
//   budget = |s_K|·Σ_h |w_h|·(γ_D(u_acc)·A_h + γ_{H+1}(u_acc)·r_h) + u_out·|logit|.
// The per-head scale model multiplies s_K into every head first: one more u_acc per head term.
double logit_budget(std::span<const double> abs_w, std::span<const double> abs_dot_terms,
                    std::span<const double> relu_abs, double abs_scale, double logit_abs, int head_dim,
                    const KernelPrecision& k);

}  // namespace dsa
