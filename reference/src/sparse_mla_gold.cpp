// Sparse MLA gold (SPEC §4, §5): fp64, the formulas as they read. The operands are exactly the
// values read_mla_token() gives under the reader model (so quantization error cancels when a
// kernel is judged) and q decoded from bf16. Each selected token is read once per row and group of
// 32 heads, not once per head, and those work items run in parallel; nothing else is clever.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "dsa/formats.hpp"
#include "dsa/sparse_mla.hpp"
#include "dsa/sparse_mla_interim_bound.hpp"
#include "sparse_mla_problem.hpp"

namespace dsa {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The returned lse of SPEC §4 / §9 from the natural lse of U (−inf when U is empty).
double convention_lse(double lse_nat, bool empty, const float* sink, std::int32_t h, const MlaConventions& c) {
  double lse;
  const bool with_sink = c.sink_in_lse && sink != nullptr && sink[h] != -kInf;
  if (!with_sink) {
    lse = empty ? (c.lse_empty == LseEmpty::pos_inf ? kInf : -kInf) : lse_nat;
  } else {
    const double s = sink[h];
    if (empty) {
      lse = s;  // ln(exp sink)
    } else if (s == kInf) {
      lse = kInf;
    } else {
      const double m = std::max(lse_nat, s);  // ln(exp lse + exp sink), stably
      lse = m + std::log(std::exp(lse_nat - m) + std::exp(s - m));
    }
  }
  if (c.lse_base == LseBase::two) lse = lse / std::numbers::ln2;
  return lse;
}

SparseMlaGold gold(const detail::MlaProblem& p, SparseMlaGoldStats* st) {
  SparseMlaGold g;
  const std::int64_t T = p.T;
  const std::int32_t H = p.H;
  const int D = p.D_qk, Dv = p.D_v;
  g.T = T;
  g.H = H;
  g.D_v = Dv;
  g.out.assign(static_cast<std::size_t>(T * H * Dv), 0.0);
  g.lse.assign(static_cast<std::size_t>(T * H), 0.0);
  g.max_logits.assign(static_cast<std::size_t>(T * H), -kInf);
  if (st) {
    st->T = T;
    st->H = H;
    st->D_qk = D;
    st->D_v = Dv;
    st->valid_slots.assign(static_cast<std::size_t>(T), 0);
    st->lse_nat.assign(static_cast<std::size_t>(T * H), -kInf);
    st->max_abs_dot.assign(static_cast<std::size_t>(T * H), 0.0);
    st->logit_range.assign(static_cast<std::size_t>(T * H), 0.0);
    st->sink_factor.assign(static_cast<std::size_t>(T * H), 1.0);
    st->abs_v.assign(static_cast<std::size_t>(T * H * Dv), 0.0);
    st->dev_v.assign(static_cast<std::size_t>(T * H * Dv), 0.0);
  }
  const std::int64_t slots = p.slots();

  // Work items are (row, chunk of kHeadChunk heads), so that a single row still uses every
  // thread; each item reads its row's tokens once. Every head's arithmetic is the same whatever
  // the chunking.
  constexpr std::int32_t kHeadChunk = 32;
  const std::int32_t chunks = (H + kHeadChunk - 1) / kHeadChunk;

#pragma omp parallel if (p.parallel())
  {
    std::vector<float> token(static_cast<std::size_t>(D));
    std::vector<double> k;   // [n][D]    operands of the valid slots, in slot order
    std::vector<double> qt;  // [D][hn]   q transposed, so the loops over heads are innermost
    std::vector<double> z;   // [n][hn]   logits
    std::vector<double> o(static_cast<std::size_t>(Dv));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t item = 0; item < T * chunks; ++item) {
      const std::int64_t r = item / chunks;
      const std::int32_t h0 = static_cast<std::int32_t>(item % chunks) * kHeadChunk;
      const std::int32_t hn = std::min(kHeadChunk, H - h0);
      // U: every valid slot, primary then extra.
      k.clear();
      for (std::int64_t s = 0; s < slots; ++s) {
        const auto slot = p.slot(r, s);
        if (!slot.ref.valid()) continue;
        read_mla_token(slot.sel->cache, slot.ref.block, slot.ref.t, p.reader, token.data());
        k.insert(k.end(), token.begin(), token.end());
      }
      const std::int64_t n = static_cast<std::int64_t>(k.size()) / D;
      if (st && h0 == 0) st->valid_slots[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(n);

      qt.assign(static_cast<std::size_t>(D * hn), 0.0);
      for (std::int32_t i = 0; i < hn; ++i)
        for (int d = 0; d < D; ++d) qt[d * hn + i] = bf16_to_f32(p.q[(r * H + h0 + i) * D + d]);

      // z_j = sm_scale · ⟨q, k_j⟩, the sum over d in order.
      z.assign(static_cast<std::size_t>(n * hn), 0.0);
      for (std::int64_t j = 0; j < n; ++j) {
        double* zj = &z[j * hn];
        for (int d = 0; d < D; ++d) {
          const double kd = k[j * D + d];
          const double* qd = &qt[d * hn];
          for (std::int32_t i = 0; i < hn; ++i) zj[i] += qd[i] * kd;
        }
        for (std::int32_t i = 0; i < hn; ++i) zj[i] *= p.sm_scale;
      }

      for (std::int32_t i = 0; i < hn; ++i) {
        const std::int32_t h = h0 + i;
        const std::size_t rh = static_cast<std::size_t>(r * H + h);
        double* out = &g.out[rh * Dv];
        if (n == 0) {  // empty U: out = 0, lse per lse_empty
          g.lse[rh] = convention_lse(-kInf, true, p.sink, h, p.conv);
          continue;
        }
        // lse = ln Σ exp z_j  (= m + ln Σ exp(z_j − m))
        double m = -kInf, zmin = kInf;
        for (std::int64_t j = 0; j < n; ++j) {
          m = std::max(m, z[j * hn + i]);
          zmin = std::min(zmin, z[j * hn + i]);
        }
        double sum = 0.0;
        for (std::int64_t j = 0; j < n; ++j) sum += std::exp(z[j * hn + i] - m);
        const double lse = m + std::log(sum);
        // out = Σ_j exp(z_j − lse) · v_j
        std::fill(o.begin(), o.end(), 0.0);
        for (std::int64_t j = 0; j < n; ++j) {
          const double wj = std::exp(z[j * hn + i] - lse);
          const double* v = &k[j * D];
          for (int d = 0; d < Dv; ++d) o[d] += wj * v[d];
        }
        // The sink: out ← out / (1 + exp(sink − lse)); +inf ⇒ out = 0, −inf ⇒ out unchanged.
        const double sink = p.sink != nullptr ? p.sink[h] : -kInf;
        const double denom = 1.0 + std::exp(sink - lse);
        for (int d = 0; d < Dv; ++d) out[d] = sink == -kInf ? o[d] : sink == kInf ? 0.0 : o[d] / denom;
        g.lse[rh] = convention_lse(lse, false, p.sink, h, p.conv);
        g.max_logits[rh] = m;

        if (st) {
          st->lse_nat[rh] = lse;
          st->logit_range[rh] = m - zmin;
          st->sink_factor[rh] = sink == -kInf ? 1.0 : sink == kInf ? 0.0 : 1.0 / denom;
          double max_abs = 0.0;
          for (std::int64_t j = 0; j < n; ++j) {
            double a = 0.0;
            for (int d = 0; d < D; ++d) a += std::fabs(qt[d * hn + i] * k[j * D + d]);
            max_abs = std::max(max_abs, p.sm_scale * a);
          }
          st->max_abs_dot[rh] = max_abs;
          double* av = &st->abs_v[rh * Dv];
          double* dv = &st->dev_v[rh * Dv];
          for (std::int64_t j = 0; j < n; ++j) {
            const double wj = std::exp(z[j * hn + i] - lse);
            for (int d = 0; d < Dv; ++d) {
              av[d] += wj * std::fabs(k[j * D + d]);
              dv[d] += wj * std::fabs(k[j * D + d] - o[d]);
            }
          }
        }
      }
    }
  }
  return g;
}

}  // namespace

std::uint16_t f64_to_bf16(double x) {
  float f = static_cast<float>(x);  // RNE
  if (std::isfinite(f) && static_cast<double>(f) != x) {
    // Round to odd (truncate, then set the last bit): rounding that to bf16 (16 bits narrower)
    // gives the RNE of x itself.
    if (std::fabs(static_cast<double>(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
    f = f32_from_bits(f32_bits(f) | 1u);
  }
  return f32_to_bf16(f);
}

SparseMlaGold sparse_mla_decode_gold(const SparseMlaDecodeParams& p, SparseMlaGoldStats* stats) {
  validate(p);
  return gold(detail::make_problem(p), stats);
}

SparseMlaGold sparse_mla_prefill_gold(const SparseMlaPrefillParams& p, SparseMlaGoldStats* stats) {
  validate(p);
  return gold(detail::make_problem(p), stats);
}

void round_gold_outputs(const SparseMlaGold& g, const SparseMlaOutputs& o) {
  for (std::size_t i = 0; i < g.out.size(); ++i) o.out[i] = f64_to_bf16(g.out[i]);
  if (!o.lse.empty())
    for (std::size_t i = 0; i < g.lse.size(); ++i) o.lse[i] = static_cast<float>(g.lse[i]);
  if (!o.max_logits.empty())
    for (std::size_t i = 0; i < g.max_logits.size(); ++i) o.max_logits[i] = static_cast<float>(g.max_logits[i]);
}

void sparse_mla_decode_gold(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o) {
  validate(p, o);
  round_gold_outputs(gold(detail::make_problem(p), nullptr), o);
}

void sparse_mla_prefill_gold(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o) {
  validate(p, o);
  round_gold_outputs(gold(detail::make_problem(p), nullptr), o);
}

}  // namespace dsa
