// The GPU-style plain-loop sparse MLA decode and its bug variants (see model_kernel.hpp).
#include "model_kernel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "dsa/error.hpp"
#include "dsa/mla_slots.hpp"

namespace dsa::fuzz::model {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
std::size_t sz(std::int64_t n) { return static_cast<std::size_t>(n); }

struct Sel {
  MlaCacheView cache;
  std::span<const std::int32_t> block_table;
  std::int64_t max_blocks = 0;
  std::span<const std::int32_t> indices;
  std::int32_t topk = 0;
  std::span<const std::int32_t> lengths;
};

// SPEC §9 conventions of the returned lse, from the natural lse (−inf: empty row).
float returned_lse(float lse_nat, bool has_sink, float sink, const MlaConventions& c) {
  const bool empty = lse_nat == -kInf;
  float lse;
  if (!(c.sink_in_lse && has_sink && sink != -kInf)) {
    lse = empty ? (c.lse_empty == LseEmpty::pos_inf ? kInf : -kInf) : lse_nat;
  } else if (empty) {
    lse = sink;
  } else if (sink == kInf) {
    lse = kInf;
  } else {
    const float m = std::max(lse_nat, sink);
    lse = m + std::log(std::exp(lse_nat - m) + std::exp(sink - m));
  }
  if (c.lse_base == LseBase::two) lse = static_cast<float>(static_cast<double>(lse) / std::log(2.0));
  return lse;
}

float sink_factor(float sink, float lse_nat) {
  if (sink == kInf) return 0.0f;
  if (sink == -kInf) return 1.0f;
  return 1.0f / (1.0f + std::exp(sink - lse_nat));
}

}  // namespace

template <Variant V>
void decode(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, int num_splits) {
  validate(p, o);
  if (num_splits < 1) throw InvalidArgument("num_splits", fmt::format("must be ≥ 1 (got {})", num_splits));
  const int D = p.cache.geo.dim_qk(), Dv = mla_dim_v();
  const std::int64_t T = p.B * p.S_q;
  Sel sels[2] = {{p.cache, p.block_table, p.max_blocks, p.indices, p.topk, p.topk_length},
                 {p.extra_cache, p.extra_block_table, p.extra_max_blocks, p.extra_indices, p.extra_topk,
                  p.extra_topk_length}};
  const int num_sel = p.extra_topk > 0 ? 2 : 1;
  const std::int64_t L = std::int64_t{p.topk} + (num_sel == 2 ? p.extra_topk : 0);
  const float sm = effective_sm_scale(p.sm_scale, D);
  const bool has_sink = !p.attn_sink.empty();

  std::vector<float> k(sz(L * D)), q(sz(D)), z(kTileSlots), acc(sz(Dv)), out(sz(Dv));
  std::vector<std::uint8_t> valid(sz(L));
  std::vector<float> po(sz(num_splits * Dv)), plse(sz(num_splits)), pmax(sz(num_splits));
  for (std::int64_t r = 0; r < T; ++r) {
    const std::int64_t b = r / p.S_q;
    // The row's operands, slot by slot (primary then extra); masked slots are zero rows.
    for (std::int64_t s = 0; s < L; ++s) {
      const int si = s < p.topk ? 0 : 1;
      const Sel& sel = sels[si];
      const auto j = static_cast<std::int32_t>(si == 0 ? s : s - p.topk);
      const std::int32_t elig = eligible_slots(sel.topk, sel.lengths.empty() ? nullptr : sel.lengths.data(), b);
      MlaTokenRef ref;
      if (j < elig) {
        const std::int32_t* bt = p.index_mode == IndexMode::logical ? sel.block_table.data() + b * sel.max_blocks : nullptr;
        ref = resolve_slot(p.index_mode, sel.indices[sz(r * sel.topk + j)], bt, sel.max_blocks,
                           sel.cache.geo.num_blocks, sel.cache.geo.page_tokens);
      }
      valid[sz(s)] = ref.valid();
      if (ref.valid()) read_mla_token(sel.cache, ref.block, ref.t, p.reader, k.data() + s * D);
      else std::fill_n(k.begin() + s * D, D, 0.0f);
    }
    for (std::int32_t h = 0; h < p.H; ++h) {
      const std::uint16_t* qh = p.q.data() + (r * p.H + h) * D;
      for (int d = 0; d < D; ++d) q[sz(d)] = bf16_to_f32(qh[d]);
      const float sink = has_sink ? p.attn_sink[sz(h)] : -kInf;
      for (int i = 0; i < num_splits; ++i) {
        const SlotRange range = split_range(L, num_splits, i);
        float m = -kInf, l = 0.0f;
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (std::int64_t t0 = range.begin; t0 < range.end; t0 += kTileSlots) {
          const int n = static_cast<int>(std::min<std::int64_t>(kTileSlots, range.end - t0));
          float tile_max = -kInf;
          for (int jj = 0; jj < n; ++jj) {
            const std::int64_t s = t0 + jj;
            if (valid[sz(s)]) {
              float dot = 0.0f;
              const float* ks = k.data() + s * D;
              for (int d = 0; d < D; ++d) dot += q[sz(d)] * ks[d];
              z[sz(jj)] = sm * dot;
            } else {
              z[sz(jj)] = -kInf;
            }
            tile_max = std::max(tile_max, z[sz(jj)]);
          }
          const float m_new = std::max(m, tile_max);
          if constexpr (V.guard_masked_tile) {
            if (m_new == -kInf) continue;  // every slot so far masked: nothing to rescale
          }
          const float alpha = std::exp(m - m_new);
          l *= alpha;
          for (int d = 0; d < Dv; ++d) acc[sz(d)] *= alpha;
          for (int jj = 0; jj < n; ++jj) {
            const float pj = std::exp(z[sz(jj)] - m_new);
            l += pj;
            const float* v = k.data() + (t0 + jj) * D;
            for (int d = 0; d < Dv; ++d) acc[sz(d)] += pj * v[d];
          }
          m = m_new;
        }
        float* oi = po.data() + i * Dv;
        if (l == 0.0f) {
          std::fill_n(oi, Dv, 0.0f);
          plse[sz(i)] = V.empty_split_lse_neg_inf ? -kInf : 0.0f;
          pmax[sz(i)] = -kInf;
        } else {
          for (int d = 0; d < Dv; ++d) oi[d] = acc[sz(d)] / l;
          plse[sz(i)] = m + std::log(l);
          pmax[sz(i)] = m;
          if constexpr (V.sink_per_split) {
            if (has_sink) {
              const float f = sink_factor(sink, plse[sz(i)]);
              for (int d = 0; d < Dv; ++d) oi[d] *= f;
            }
          }
        }
      }
      // Combine (SPEC §4), then the sink once.
      float M = -kInf, max_logit = -kInf;
      for (int i = 0; i < num_splits; ++i) {
        M = std::max(M, plse[sz(i)]);
        max_logit = std::max(max_logit, pmax[sz(i)]);
      }
      float lse_nat = -kInf;
      std::fill(out.begin(), out.end(), 0.0f);
      if (M != -kInf) {
        float sum = 0.0f;
        for (int i = 0; i < num_splits; ++i) sum += std::exp(plse[sz(i)] - M);
        lse_nat = M + std::log(sum);
        for (int i = 0; i < num_splits; ++i) {
          const float w = V.rescale_in_combine ? std::exp(plse[sz(i)] - lse_nat) : 1.0f;
          const float* oi = po.data() + i * Dv;
          for (int d = 0; d < Dv; ++d) out[sz(d)] += w * oi[d];
        }
        if (!V.sink_per_split && has_sink) {
          const float f = sink_factor(sink, lse_nat);
          for (int d = 0; d < Dv; ++d) out[sz(d)] = sink == kInf ? 0.0f : out[sz(d)] * f;
        }
      }
      std::uint16_t* dst = o.out.data() + (r * p.H + h) * Dv;
      for (int d = 0; d < Dv; ++d) dst[d] = f32_to_bf16(out[sz(d)]);
      const std::int64_t rh = r * p.H + h;
      if (!o.lse.empty()) o.lse[sz(rh)] = returned_lse(lse_nat, has_sink, sink, p.conventions);
      if (!o.max_logits.empty()) o.max_logits[sz(rh)] = max_logit;
    }
  }
}

template <Variant V>
void prefill(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, int num_splits) {
  validate(p, o);
  SparseMlaDecodeParams d;
  d.q = p.q;
  d.B = p.S_q;
  d.S_q = 1;
  d.H = p.H;
  d.index_mode = IndexMode::physical;
  d.cache = p.kv;
  d.indices = p.indices;
  d.topk = p.topk;
  d.topk_length = p.topk_length;
  d.attn_sink = p.attn_sink;
  d.sm_scale = p.sm_scale;
  d.reader = p.reader;
  d.conventions = p.conventions;
  decode<V>(d, o, num_splits);
}

#define DSA_MODEL_INSTANTIATE(V)                                                              \
  template void decode<V>(const SparseMlaDecodeParams&, const SparseMlaOutputs&, int);       \
  template void prefill<V>(const SparseMlaPrefillParams&, const SparseMlaOutputs&, int);
DSA_MODEL_INSTANTIATE(kCorrect)
DSA_MODEL_INSTANTIATE(kNoMaskedTileGuard)
DSA_MODEL_INSTANTIATE(kSinkPerSplit)
DSA_MODEL_INSTANTIATE(kCombineWithoutRescale)
DSA_MODEL_INSTANTIATE(kEmptySplitLseZero)
#undef DSA_MODEL_INSTANTIATE

}  // namespace dsa::fuzz::model
