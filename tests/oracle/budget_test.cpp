// The budget cores of oracle/BUDGETS.md against simulated kernels: a correct fp32 online-softmax
// attention with bf16 P stays under budget on random rows; kernels with a real precision defect
// exceed it. The simulated kernels are written here, independently of the reference paths.
#include "dsa/budget.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "dsa/formats.hpp"

namespace {

struct Row {
  int n, dq, dv;
  std::vector<float> q, k, v;  // q [dq], k [n][dq], v [n][dv]: bf16-representable
  float scale;
};

Row random_row(std::mt19937_64& rng, int n, int dq, int dv, float spread) {
  Row r{n, dq, dv, {}, {}, {}, 1.0f / std::sqrt(static_cast<float>(dq))};
  std::normal_distribution<float> g(0.0f, 1.0f);
  auto bf = [&](float x) { return dsa::round_to_bf16(x); };
  r.q.resize(dq);
  r.k.resize(static_cast<std::size_t>(n) * dq);
  r.v.resize(static_cast<std::size_t>(n) * dv);
  for (auto& x : r.q) x = bf(g(rng) * spread);
  for (auto& x : r.k) x = bf(g(rng));
  for (auto& x : r.v) x = bf(g(rng) + 0.5f);
  return r;
}

// A FlashAttention-style fp32 kernel: tiles of `block` keys, running max, exp, P rounded by
// `round_p`, fp32 accumulation, final division and bf16 output. Returns out (as float) and lse.
template <class RoundP>
void kernel(const Row& r, int block, RoundP round_p, std::vector<float>& out, float& lse) {
  float m = -INFINITY, l = 0.0f;
  std::vector<float> acc(r.dv, 0.0f);
  for (int j0 = 0; j0 < r.n; j0 += block) {
    const int j1 = std::min(r.n, j0 + block);
    std::vector<float> z(j1 - j0);
    float m_new = m;
    for (int j = j0; j < j1; ++j) {
      float dot = 0.0f;
      for (int d = 0; d < r.dq; ++d) dot += r.q[d] * r.k[static_cast<std::size_t>(j) * r.dq + d];
      z[j - j0] = dot * r.scale;
      m_new = std::max(m_new, z[j - j0]);
    }
    const float alpha = std::exp(m - m_new);
    l *= alpha;
    for (auto& a : acc) a *= alpha;
    for (int j = j0; j < j1; ++j) {
      const float p = std::exp(z[j - j0] - m_new);
      l += p;
      const float pr = round_p(p);
      for (int d = 0; d < r.dv; ++d) acc[d] += pr * r.v[static_cast<std::size_t>(j) * r.dv + d];
    }
    m = m_new;
  }
  out.resize(r.dv);
  for (int d = 0; d < r.dv; ++d) out[d] = dsa::round_to_bf16(acc[d] / l);
  lse = m + std::log(l);
}

struct Judged {
  double worst_out = 0.0, worst_lse = 0.0;
};

// Exact fp64 reference + budgets of BUDGETS.md §2, then the worst ratio of `kernel_out`.
Judged judge(const Row& r, int block, const std::vector<float>& kout, float klse, const dsa::KernelPrecision& prec) {
  std::vector<double> z(r.n), za(r.n), p(r.n);
  double zmax = -INFINITY;
  for (int j = 0; j < r.n; ++j) {
    double dot = 0.0, adot = 0.0;
    for (int d = 0; d < r.dq; ++d) {
      const double t = static_cast<double>(r.q[d]) * r.k[static_cast<std::size_t>(j) * r.dq + d];
      dot += t;
      adot += std::fabs(t);
    }
    z[j] = dot * r.scale;
    za[j] = adot * r.scale;
    zmax = std::max(zmax, z[j]);
  }
  double l = 0.0;
  for (int j = 0; j < r.n; ++j) l += std::exp(z[j] - zmax);
  const double lse = zmax + std::log(l);
  for (int j = 0; j < r.n; ++j) p[j] = std::exp(z[j] - lse);
  dsa::AttentionRowStats s{z, za, p, r.dq, 1, (r.n + block - 1) / block};
  std::vector<double> eps(r.n);
  const double lse_shift = dsa::probability_error_bounds(s, prec, eps);
  Judged out;
  for (int d = 0; d < r.dv; ++d) {
    double o = 0.0, pav = 0.0, pev = 0.0;
    for (int j = 0; j < r.n; ++j) {
      const double v = r.v[static_cast<std::size_t>(j) * r.dv + d];
      o += p[j] * v;
      pav += p[j] * std::fabs(v);
      pev += p[j] * std::fabs(v) * eps[j];
    }
    const double b = dsa::attention_out_budget(pev, pav, std::fabs(o), r.n, s, prec);
    out.worst_out = std::max(out.worst_out, std::fabs(kout[d] - o) / b);
  }
  const double bl = dsa::attention_lse_budget(lse_shift, std::fabs(lse), r.n, s, prec);
  out.worst_lse = std::fabs(klse - lse) / bl;
  return out;
}

}  // namespace

TEST(Gamma, MatchesDefinition) {
  EXPECT_DOUBLE_EQ(dsa::gamma(10, 0x1p-24), 10 * 0x1p-24 / (1 - 10 * 0x1p-24));
  EXPECT_TRUE(std::isinf(dsa::gamma(1 << 24, 0x1p-24)));
}

TEST(AttentionBudget, CorrectFp32KernelWithBf16PStaysUnderBudget) {
  std::mt19937_64 rng(12345);
  const dsa::KernelPrecision prec;  // fp32 accumulate, bf16 P, bf16 out
  double worst_out = 0, worst_lse = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 300);
    const float spread = std::exp2(static_cast<float>(rng() % 6));  // peaky to flat softmax
    const Row r = random_row(rng, n, 64, 32, spread);
    std::vector<float> out;
    float lse;
    kernel(r, 64, [](float p) { return dsa::round_to_bf16(p); }, out, lse);
    const auto j = judge(r, 64, out, lse, prec);
    worst_out = std::max(worst_out, j.worst_out);
    worst_lse = std::max(worst_lse, j.worst_lse);
  }
  RecordProperty("worst_out_ratio", std::to_string(worst_out));
  RecordProperty("worst_lse_ratio", std::to_string(worst_lse));
  EXPECT_LE(worst_out, 1.0);
  EXPECT_LE(worst_lse, 1.0);
  // The budget is not vacuous: the worst element uses a visible part of it.
  EXPECT_GT(worst_out, 1.0 / 64);
}

TEST(AttentionBudget, KernelRoundingPToFp8WhilePromisingBf16IsCaught) {
  std::mt19937_64 rng(777);
  const dsa::KernelPrecision prec;  // promises bf16 P
  double worst = 0;
  for (int trial = 0; trial < 20; ++trial) {
    const Row r = random_row(rng, 200, 64, 32, 1.0f);
    std::vector<float> out;
    float lse;
    kernel(r, 64, [](float p) { return dsa::fp8_to_f32(dsa::f32_to_fp8(p, dsa::Fp8Format::e4m3fn), dsa::Fp8Format::e4m3fn); },
           out, lse);
    worst = std::max(worst, judge(r, 64, out, lse, prec).worst_out);
  }
  EXPECT_GT(worst, 1.0);
  // Promising fp8 P admits it.
  dsa::KernelPrecision fp8p;
  fp8p.u_p = dsa::kUnitFp8E4M3;
  std::mt19937_64 rng2(777);
  double worst_ok = 0;
  for (int trial = 0; trial < 20; ++trial) {
    const Row r = random_row(rng2, 200, 64, 32, 1.0f);
    std::vector<float> out;
    float lse;
    kernel(r, 64, [](float p) { return dsa::fp8_to_f32(dsa::f32_to_fp8(p, dsa::Fp8Format::e4m3fn), dsa::Fp8Format::e4m3fn); },
           out, lse);
    worst_ok = std::max(worst_ok, judge(r, 64, out, lse, fp8p).worst_out);
  }
  EXPECT_LE(worst_ok, 1.0);
}

TEST(AttentionBudget, KernelWithBf16ScoresIsCaught) {
  // A kernel that rounds the scores to bf16 (a real bug class: logits kept in bf16) breaks the
  // fp32 score budget.
  std::mt19937_64 rng(99);
  const dsa::KernelPrecision prec;
  double worst = 0;
  for (int trial = 0; trial < 10; ++trial) {
    Row r = random_row(rng, 128, 64, 32, 8.0f);
    // Emulate by perturbing q·k through a bf16 round of the scale-multiplied q.
    Row bad = r;
    for (auto& x : bad.q) x = dsa::round_to_bf16(x * bad.scale * 1.0039f);
    bad.scale = 1.0f / 1.0039f;
    std::vector<float> out;
    float lse;
    kernel(bad, 64, [](float p) { return dsa::round_to_bf16(p); }, out, lse);
    worst = std::max(worst, judge(r, 64, out, lse, prec).worst_lse);
  }
  EXPECT_GT(worst, 1.0);
}

TEST(LogitBudget, Fp32DotsStayUnderAndBf16KIsCaught) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const int H = 16, D = 128;
  dsa::KernelPrecision prec;
  prec.u_out = dsa::kUnitFp32;
  double worst_ok = 0, worst_bad = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> q(H * D), k(D), w(H);
    for (auto& x : q) x = dsa::fp8_to_f32(dsa::f32_to_fp8(g(rng) * 8, dsa::Fp8Format::e4m3fn), dsa::Fp8Format::e4m3fn);
    for (auto& x : k) x = dsa::fp8_to_f32(dsa::f32_to_fp8(g(rng) * 8, dsa::Fp8Format::e4m3fn), dsa::Fp8Format::e4m3fn);
    for (auto& x : w) x = g(rng);
    const float sk = 0.0137f;
    std::vector<double> aw(H), adot(H), relu(H);
    double exact = 0.0;
    float fast = 0.0f, bad = 0.0f;
    for (int h = 0; h < H; ++h) {
      double dot = 0, a = 0;
      float fdot = 0, bdot = 0;
      for (int d = 0; d < D; ++d) {
        dot += static_cast<double>(q[h * D + d]) * k[d];
        a += std::fabs(static_cast<double>(q[h * D + d]) * k[d]);
        fdot += q[h * D + d] * k[d];
        bdot += q[h * D + d] * dsa::round_to_bf16(k[d] * sk);  // K·s rounded to bf16, not promised
      }
      aw[h] = std::fabs(w[h]);
      adot[h] = a;
      relu[h] = std::max(dot, 0.0);
      exact += w[h] * std::max(dot, 0.0);
      fast += w[h] * std::max(fdot, 0.0f);
      bad += w[h] * std::max(bdot, 0.0f);
    }
    exact *= sk;
    fast *= sk;
    const double b = dsa::logit_budget(aw, adot, relu, sk, std::fabs(exact), D, prec);
    worst_ok = std::max(worst_ok, std::fabs(fast - exact) / b);
    worst_bad = std::max(worst_bad, std::fabs(bad - exact) / b);
  }
  EXPECT_LE(worst_ok, 1.0);
  EXPECT_GT(worst_bad, 1.0);
}
