// The indexer-logit budget of BUDGETS.md §3 per visible position: per head the exact dot d_h,
// A_h = Σ_d |q_hd·k_d|, relu(d_h) and |w_h|, handed to logit_budget() of budget.hpp; the gold
// logit from the same fp64 pass through the shared formula (mqa_logit_formula.hpp, T = double).
// Shared by paged_mqa_logits and mqa_logits.
#include "logits_budget_rows.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "dsa/error.hpp"
#include "dsa/formats.hpp"
#include "dsa/mqa_logit_formula.hpp"

namespace dsa::detail {

namespace {

constexpr double kMasked = -std::numeric_limits<double>::infinity();

template <KScaleAt At>
void budget_rows(const LogitsBudgetProblem& p, const KernelPrecision& k, LogitsBudget& b) {
  const std::int64_t H = p.heads, D = p.dim, W = p.width;
#pragma omp parallel
  {
    std::vector<double> q(static_cast<std::size_t>(H * D)), kd(static_cast<std::size_t>(D));
    std::vector<float> kv(static_cast<std::size_t>(D));
    std::vector<double> abs_w(static_cast<std::size_t>(H)), abs_dot(static_cast<std::size_t>(H)),
        relu_abs(static_cast<std::size_t>(H));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t r = 0; r < p.rows; ++r) {
      for (std::int64_t j = 0; j < H * D; ++j) q[static_cast<std::size_t>(j)] = fp8_to_f32(p.q[r * H * D + j], p.q_fp8);
      const float* w = p.weights + r * H;
      for (std::int64_t h = 0; h < H; ++h) abs_w[static_cast<std::size_t>(h)] = std::fabs(static_cast<double>(w[h]));
      const VisibleRange range = b.ranges[static_cast<std::size_t>(r)];
      double* gold = b.gold.data() + r * W;
      double* bud = b.budget.data() + r * W;
      for (std::int64_t t = 0; t < W; ++t) {
        if (!range.contains(t)) {
          gold[t] = kMasked;
          bud[t] = 0.0;
          continue;
        }
        const float s = p.read_token(r, t, kv.data());
        for (std::int64_t d = 0; d < D; ++d)
          kd[static_cast<std::size_t>(d)] = mqa_formula::k_operand<At>(kv[static_cast<std::size_t>(d)], s);
        // The scale as the budget sees it (BUDGETS.md §3.1): s_K multiplies the head sum or each
        // head; under on_k_bf16 it is inside the operands.
        const double scale = At == KScaleAt::on_k_bf16 ? 1.0 : static_cast<double>(s);
        double acc = 0.0;
        for (std::int64_t h = 0; h < H; ++h) {
          double dot = 0.0, a = 0.0;
          const double* qh = &q[static_cast<std::size_t>(h * D)];
          for (std::int64_t d = 0; d < D; ++d) {
            const double x = qh[d] * kd[static_cast<std::size_t>(d)];
            dot += x;
            a += std::fabs(x);
          }
          acc += mqa_formula::head_term<At, double>(dot, static_cast<double>(w[h]), static_cast<double>(s));
          abs_dot[static_cast<std::size_t>(h)] = a;
          // relu of the term that enters the head sum, in units of |s_K|.
          double rl = mqa_formula::relu(dot);
          if (At == KScaleAt::per_head && scale != 0.0) rl = mqa_formula::relu(scale * dot) / std::fabs(scale);
          relu_abs[static_cast<std::size_t>(h)] = rl;
        }
        const double logit = mqa_formula::finish<At, double>(acc, static_cast<double>(s));
        gold[t] = logit;
        const double e = logit_budget(abs_w, abs_dot, relu_abs, std::fabs(scale), std::fabs(logit), static_cast<int>(D), k);
        bud[t] = e >= 0.0 ? e : 0.0;
      }
    }
  }
}

}  // namespace

void logits_budget(const LogitsBudgetProblem& p, const KernelPrecision& k, LogitsBudget& b) {
  b.rows = p.rows;
  b.width = p.width;
  b.gold.assign(static_cast<std::size_t>(p.rows * p.width), kMasked);
  b.budget.assign(static_cast<std::size_t>(p.rows * p.width), 0.0);
  switch (p.k_scale_at) {
    case KScaleAt::after_head_sum: budget_rows<KScaleAt::after_head_sum>(p, k, b); break;
    case KScaleAt::per_head: budget_rows<KScaleAt::per_head>(p, k, b); break;
    case KScaleAt::on_k_bf16: budget_rows<KScaleAt::on_k_bf16>(p, k, b); break;
  }
}

CaseResult judge_logits(const LogitsBudget& b, std::span<const float> logits, std::int64_t row_stride,
                        const JudgeOptions& options, std::int64_t contract_page_tokens,
                        const std::vector<std::string>& names, const std::vector<std::int64_t>& row_extents) {
  const std::int64_t rows = b.rows, W = b.width;
  if (row_stride < W)
    throw InvalidArgument("logits", fmt::format("row stride {} is below the logits width {}", row_stride, W));
  const std::int64_t need = rows == 0 ? 0 : (rows - 1) * row_stride + W;
  if (static_cast<std::int64_t>(logits.size()) < need)
    throw InvalidArgument("logits", fmt::format("has {} elements; {} rows of stride {} and width {} need {}",
                                                logits.size(), rows, row_stride, W, need));
  if (options.write_contract == WriteContract::ceil_page && contract_page_tokens < 1)
    throw InvalidArgument("contract_page_tokens", fmt::format("must be ≥ 1 for ceil_page (got {})", contract_page_tokens));
  std::vector<double> got(static_cast<std::size_t>(rows * W));
  std::vector<std::uint8_t> unwritten;
  if (options.sentinel_f32) unwritten.assign(got.size(), 0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = 0; t < W; ++t) {
      const float v = logits[static_cast<std::size_t>(r * row_stride + t)];
      got[static_cast<std::size_t>(r * W + t)] = v;
      if (options.sentinel_f32) unwritten[static_cast<std::size_t>(r * W + t)] = f32_bits(v) == *options.sentinel_f32;
    }
  std::vector<std::uint8_t> skip;
  if (options.write_contract != WriteContract::all)
    skip = write_contract_skip_mask(options.write_contract, b.ranges, W, std::max<std::int64_t>(contract_page_tokens, 1));
  TensorShape shape{names, row_extents};
  shape.names.push_back("t");
  shape.extents.push_back(W);
  CaseResult res;
  res.outputs.push_back(judge_output("logits", got, b.gold, b.budget, shape, unwritten, skip, res.histogram));
  return res;
}

}  // namespace dsa::detail
