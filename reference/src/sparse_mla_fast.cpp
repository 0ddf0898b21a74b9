// Sparse MLA fast path (SPEC §4, §5): fp32, Eigen + OpenMP, structured like the GPU algorithms.
//
// One engine serves every variant. A work item is (query row, group of kMlaHeadGroup heads,
// split chunk of the slot axis). It walks the chunk's valid slots in order, kMlaTileSlots at a
// time, with four building blocks:
//   (a) score tile      S = sm_scale · Q Kᵀ for the head group against one tile of K rows;
//   (b) online softmax  running max m, sum l and unnormalized O += P·V (V = K's first D_v dims);
//   (c) partial         o = O / l, lse = m + ln l; an empty chunk is (0, −inf);
//   (d) combine         SPEC §4's merge of the partials, then the sink once, conventions, bf16.
// Single pass is the combine of one partial, so num_splits = 1 *is* the unsplit path.
// fused fills the K tile from the paged cache (read_mla_token, the reader model); staged first
// gathers every selected row into a bf16 workspace and runs the same engine over that BF16
// "cache" with rebuilt indices. Tiles, head groups and reduction orders are fixed constants, so
// results do not depend on the thread count, and staged ≡ fused bit for bit whenever the reader
// model's operands are bf16 (then both fill identical fp32 tiles).
//
// Eigen products are always called from inside the OpenMP region and run single-threaded there;
// sums that feed a result are written with a fixed order (ordered_sum).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

#include "dsa/error.hpp"
#include "dsa/formats.hpp"
#include "dsa/sparse_mla.hpp"
#include "sparse_mla_problem.hpp"

namespace dsa {

namespace {

using detail::MlaProblem;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstStrided = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Sum in a fixed order (16 lanes, element j in lane j % 16, lanes folded pairwise), so that the
// compiler may vectorize it without changing a bit.
float ordered_sum(const float* x, int n) {
  float lane[16] = {};
  int j = 0;
  for (; j + 16 <= n; j += 16)
    for (int i = 0; i < 16; ++i) lane[i] += x[j + i];
  for (int i = 0; i < 16 && j + i < n; ++i) lane[i] += x[j + i];
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) lane[i] += lane[i + w];
  return lane[0];
}

// Per-thread scratch of one work item (allocated once per thread).
struct Scratch {
  RowMat q;  // [hg][D_qk]          the head group's queries
  RowMat k;  // [kMlaTileSlots][D_qk] operand tile: K rows; the first D_v columns are V
  RowMat s;  // [hg][kMlaTileSlots] logits, then probabilities
  RowMat o;  // [hg][D_v]           unnormalized output accumulator
  std::vector<float> m, l;  // [hg] running max and sum
  Scratch(int D_qk, int D_v)
      : q(kMlaHeadGroup, D_qk), k(kMlaTileSlots, D_qk), s(kMlaHeadGroup, kMlaTileSlots), o(kMlaHeadGroup, D_v),
        m(kMlaHeadGroup), l(kMlaHeadGroup) {}
};

// A partial result of one chunk for hg heads (SPEC §4): o normalized [hg][D_v], lse natural.
struct Partial {
  float* o;
  float* lse;
  float* max_logit;
};

// (a) S[:, :n] = sm_scale · Q Kᵀ over the first n rows of the tile.
void score_tile(Scratch& sc, int hg, int n, int D_qk, float sm_scale) {
  Strided S(sc.s.data(), hg, n, Eigen::OuterStride<>(kMlaTileSlots));
  ConstStrided Q(sc.q.data(), hg, D_qk, Eigen::OuterStride<>(D_qk));
  ConstStrided K(sc.k.data(), n, D_qk, Eigen::OuterStride<>(D_qk));
  S.noalias() = Q * K.transpose();
  S *= sm_scale;
}

// (b) Online softmax over the tile's n logits of each head, then O += P·V.
void softmax_accumulate(Scratch& sc, int hg, int n, int D_qk, int D_v) {
  for (int h = 0; h < hg; ++h) {
    float* z = sc.s.data() + static_cast<std::ptrdiff_t>(h) * kMlaTileSlots;
    float tile_max = -kInf;
    for (int j = 0; j < n; ++j) tile_max = tile_max < z[j] ? z[j] : tile_max;
    const float m_new = std::max(sc.m[h], tile_max);
    const float alpha = std::exp(sc.m[h] - m_new);  // 0 on the first tile (m = −inf)
    Eigen::Map<Eigen::ArrayXf> zs(z, n);
    zs = (zs - m_new).exp();
    sc.l[h] = sc.l[h] * alpha + ordered_sum(z, n);
    if (alpha != 1.0f) sc.o.row(h) *= alpha;
    sc.m[h] = m_new;
  }
  ConstStrided P(sc.s.data(), hg, n, Eigen::OuterStride<>(kMlaTileSlots));
  ConstStrided V(sc.k.data(), n, D_v, Eigen::OuterStride<>(D_qk));
  Eigen::Map<RowMat> O(sc.o.data(), hg, D_v);
  O.noalias() += P * V;
}

// One work item: heads [h0, h0 + hg) of row r over the slots [range.begin, range.end) of the
// concatenated axis → one partial. Only valid slots are read; nothing else touches a cache.
void attend_chunk(const MlaProblem& p, std::int64_t r, int h0, int hg, SlotRange range, Scratch& sc,
                  const Partial& out) {
  const int D = p.D_qk, Dv = p.D_v;
  for (int h = 0; h < hg; ++h) {
    const std::uint16_t* qh = p.q + (r * p.H + h0 + h) * D;
    float* dst = sc.q.data() + static_cast<std::ptrdiff_t>(h) * D;
    for (int d = 0; d < D; ++d) dst[d] = bf16_to_f32(qh[d]);
    sc.m[h] = -kInf;
    sc.l[h] = 0.0f;
  }
  sc.o.topRows(hg).setZero();
  std::int64_t count = 0;
  int n = 0;
  for (std::int64_t s = range.begin; s < range.end; ++s) {
    const auto slot = p.slot(r, s);
    if (!slot.ref.valid()) continue;
    read_mla_token(slot.sel->cache, slot.ref.block, slot.ref.t, p.reader,
                   sc.k.data() + static_cast<std::ptrdiff_t>(n) * D);
    ++count;
    if (++n == kMlaTileSlots) {
      score_tile(sc, hg, n, D, p.sm_scale);
      softmax_accumulate(sc, hg, n, D, Dv);
      n = 0;
    }
  }
  if (n > 0) {
    score_tile(sc, hg, n, D, p.sm_scale);
    softmax_accumulate(sc, hg, n, D, Dv);
  }
  // (c) the partial.
  for (int h = 0; h < hg; ++h) {
    float* o = out.o + static_cast<std::ptrdiff_t>(h) * Dv;
    if (count == 0) {
      std::fill(o, o + Dv, 0.0f);
      out.lse[h] = -kInf;
      out.max_logit[h] = -kInf;
      continue;
    }
    const float* acc = sc.o.data() + static_cast<std::ptrdiff_t>(h) * Dv;
    const float l = sc.l[h];
    for (int d = 0; d < Dv; ++d) o[d] = acc[d] / l;
    out.lse[h] = sc.m[h] + std::log(l);
    out.max_logit[h] = sc.m[h];
  }
}

// The returned lse (SPEC §9) from the natural lse of the row (−inf: empty).
float convention_lse(float lse_nat, const float* sink, int h, const MlaConventions& c) {
  const bool empty = lse_nat == -kInf;
  const bool with_sink = c.sink_in_lse && sink != nullptr && sink[h] != -kInf;
  float lse;
  if (!with_sink) {
    lse = empty ? (c.lse_empty == LseEmpty::pos_inf ? kInf : -kInf) : lse_nat;
  } else if (empty) {
    lse = sink[h];
  } else if (sink[h] == kInf) {
    lse = kInf;
  } else {
    const float m = std::max(lse_nat, sink[h]);
    lse = m + std::log(std::exp(lse_nat - m) + std::exp(sink[h] - m));
  }
  if (c.lse_base == LseBase::two) lse *= static_cast<float>(1.0 / std::log(2.0));
  return lse;
}

// (d) SPEC §4 combine of `num_splits` partials of heads [h0, h0 + hg) of row r, then the sink
// (once), the conventions and the bf16 rounding, into the caller's outputs.
// Partial i of head h: o at parts.o + (i·kMlaHeadGroup + h)·D_v, lse and max at [i·kMlaHeadGroup + h].
void combine_and_finalize(const MlaProblem& p, std::int64_t r, int h0, int hg, int num_splits, const Partial& parts,
                          float* o, const SparseMlaOutputs& out) {
  const int Dv = p.D_v;
  for (int h = 0; h < hg; ++h) {
    float lse_max = -kInf, max_logit = -kInf;
    for (int i = 0; i < num_splits; ++i) {
      lse_max = std::max(lse_max, parts.lse[i * kMlaHeadGroup + h]);
      max_logit = std::max(max_logit, parts.max_logit[i * kMlaHeadGroup + h]);
    }
    float lse = -kInf;
    std::fill(o, o + Dv, 0.0f);
    if (lse_max != -kInf) {
      float sum = 0.0f;
      for (int i = 0; i < num_splits; ++i) sum += std::exp(parts.lse[i * kMlaHeadGroup + h] - lse_max);
      lse = lse_max + std::log(sum);
      for (int i = 0; i < num_splits; ++i) {
        const float w = std::exp(parts.lse[i * kMlaHeadGroup + h] - lse);
        const float* oi = parts.o + (static_cast<std::ptrdiff_t>(i) * kMlaHeadGroup + h) * Dv;
        for (int d = 0; d < Dv; ++d) o[d] += w * oi[d];
      }
    }
    // The sink, once: out / (1 + exp(sink − lse)); +inf ⇒ 0, −inf ⇒ unchanged; empty ⇒ 0.
    const int hh = h0 + h;
    const float sink = p.sink != nullptr ? p.sink[hh] : -kInf;
    std::uint16_t* dst = out.out.data() + (r * p.H + hh) * Dv;
    if (lse == -kInf || sink == kInf) {
      std::fill(dst, dst + Dv, std::uint16_t{0});
    } else if (sink == -kInf) {
      for (int d = 0; d < Dv; ++d) dst[d] = f32_to_bf16(o[d]);
    } else {
      const float denom = 1.0f + std::exp(sink - lse);
      for (int d = 0; d < Dv; ++d) dst[d] = f32_to_bf16(o[d] / denom);
    }
    const std::int64_t rh = r * p.H + hh;
    if (!out.lse.empty()) out.lse[rh] = convention_lse(lse, p.sink, hh, p.conv);
    if (!out.max_logits.empty()) out.max_logits[rh] = max_logit;
  }
}

// The engine: every (row, head group, chunk) in parallel, then the combine.
void run_engine(const MlaProblem& p, const SparseMlaOutputs& out, int num_splits) {
  const std::int64_t T = p.T;
  const int groups = (p.H + kMlaHeadGroup - 1) / kMlaHeadGroup;
  const std::int64_t slots = p.slots();
  const int Dv = p.D_v;
  const std::int64_t items = T * groups;
  // Split partials, [T][groups][num_splits][kMlaHeadGroup][D_v] (a last, narrower group leaves
  // its tail unused). Single pass keeps its one partial per thread instead.
  std::vector<float> part_o, part_lse, part_max;
  if (num_splits > 1) {
    const std::size_t n = static_cast<std::size_t>(items) * num_splits * kMlaHeadGroup;
    part_o.resize(n * Dv);
    part_lse.resize(n);
    part_max.resize(n);
  }
  auto partial_at = [&](std::int64_t item, int i) {
    const std::size_t base = (static_cast<std::size_t>(item) * num_splits + i) * kMlaHeadGroup;
    return Partial{part_o.data() + base * Dv, part_lse.data() + base, part_max.data() + base};
  };
  auto group_of = [&](std::int64_t item, std::int64_t& r, int& h0, int& hg) {
    r = item / groups;
    h0 = static_cast<int>(item % groups) * kMlaHeadGroup;
    hg = std::min(kMlaHeadGroup, p.H - h0);
  };

#pragma omp parallel if (p.parallel())
  {
    // Eigen runs a product single-threaded inside an active team, but would open a team of its
    // own inside an inactive one (small problems): nthreads-var is per task, so this keeps every
    // product single-threaded here and changes nothing outside the region.
    omp_set_num_threads(1);
    Scratch sc(p.D_qk, Dv);
    std::vector<float> o(static_cast<std::size_t>(Dv));
    if (num_splits == 1) {
      std::vector<float> po(static_cast<std::size_t>(kMlaHeadGroup) * Dv), plse(kMlaHeadGroup), pmax(kMlaHeadGroup);
      const Partial local{po.data(), plse.data(), pmax.data()};
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t item = 0; item < items; ++item) {
        std::int64_t r;
        int h0, hg;
        group_of(item, r, h0, hg);
        attend_chunk(p, r, h0, hg, SlotRange{0, slots}, sc, local);
        combine_and_finalize(p, r, h0, hg, 1, local, o.data(), out);
      }
    } else {
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t w = 0; w < items * num_splits; ++w) {
        const std::int64_t item = w / num_splits;
        const int i = static_cast<int>(w % num_splits);
        std::int64_t r;
        int h0, hg;
        group_of(item, r, h0, hg);
        attend_chunk(p, r, h0, hg, split_range(slots, num_splits, i), sc, partial_at(item, i));
      }
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t item = 0; item < items; ++item) {
        std::int64_t r;
        int h0, hg;
        group_of(item, r, h0, hg);
        combine_and_finalize(p, r, h0, hg, num_splits, partial_at(item, 0), o.data(), out);
      }
    }
  }
}

int resolve_num_splits(const MlaProblem& p, const SparseMlaFastOptions& options) {
  if (options.num_splits < 0)
    throw InvalidArgument("options.num_splits", "must be ≥ 0 (0 chooses a count)");
  if (options.num_splits > 0) return options.num_splits;
  return choose_cpu_num_splits(p.T, p.H, p.slots(), omp_get_max_threads());
}

// The staged gather over a row problem (decode or prefill).
MlaStagedKv stage(const MlaProblem& p) {
  const std::int64_t L = p.slots();
  if (p.T * L > INT32_MAX)
    throw InvalidArgument("indices", "T·(topk + extra_topk) exceeds 2^31 − 1: too large for a staged workspace");
  MlaStagedKv ws;
  ws.T = p.T;
  ws.slots = static_cast<std::int32_t>(L);
  ws.dim_qk = p.D_qk;
  ws.rows.assign(static_cast<std::size_t>(p.T * L * p.D_qk), 0);
  ws.indices.assign(static_cast<std::size_t>(p.T * L), -1);
#pragma omp parallel if (p.parallel())
  {
    std::vector<float> token(static_cast<std::size_t>(p.D_qk));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t r = 0; r < p.T; ++r) {
      for (std::int64_t s = 0; s < L; ++s) {
        const auto slot = p.slot(r, s);
        if (!slot.ref.valid()) continue;
        read_mla_token(slot.sel->cache, slot.ref.block, slot.ref.t, p.reader, token.data());
        std::uint16_t* row = ws.rows.data() + (r * L + s) * p.D_qk;
        for (int d = 0; d < p.D_qk; ++d) row[d] = f32_to_bf16(token[d]);
        ws.indices[static_cast<std::size_t>(r * L + s)] = static_cast<std::int32_t>(r * L + s);
      }
    }
  }
  return ws;
}

// The materialized problem of a staged workspace: one physical BF16 selection, no lengths.
SparseMlaPrefillParams materialized(const MlaProblem& p, const MlaStagedKv& ws, std::span<const std::uint16_t> q,
                                    std::span<const float> sink) {
  SparseMlaPrefillParams a;
  a.q = q;
  a.S_q = p.T;
  a.H = p.H;
  a.kv = ws.kv();
  a.indices = ws.indices;
  a.topk = ws.slots;
  a.attn_sink = sink;
  a.sm_scale = p.sm_scale;
  a.reader = p.reader;
  a.conventions = p.conv;
  return a;
}

void run(const MlaProblem& p, std::span<const std::uint16_t> q, std::span<const float> sink,
         const SparseMlaOutputs& out, const SparseMlaFastOptions& options) {
  const int num_splits = resolve_num_splits(p, options);
  if (options.algo == MlaFastAlgo::fused) {
    run_engine(p, out, num_splits);
    return;
  }
  const MlaStagedKv ws = stage(p);
  sparse_mla_attention(materialized(p, ws, q, sink), out, SparseMlaFastOptions{MlaFastAlgo::fused, num_splits});
}

}  // namespace

int choose_cpu_num_splits(std::int64_t rows, std::int32_t heads, std::int64_t slots_per_row, int threads) {
  const std::int64_t items = rows * ((heads + kMlaHeadGroup - 1) / kMlaHeadGroup);
  if (items >= threads || items == 0) return 1;
  std::int64_t splits = (threads + items - 1) / items;
  splits = std::min<std::int64_t>(splits, slots_per_row / (2 * kMlaTileSlots));
  return static_cast<int>(std::max<std::int64_t>(splits, 1));
}

MlaStagedKv sparse_mla_stage(const SparseMlaDecodeParams& p) {
  validate(p);
  return stage(detail::make_problem(p));
}

void sparse_mla_decode_fast(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o,
                            const SparseMlaFastOptions& options) {
  validate(p, o);
  run(detail::make_problem(p), p.q, p.attn_sink, o, options);
}

void sparse_mla_prefill_fast(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o,
                             const SparseMlaFastOptions& options) {
  validate(p, o);
  run(detail::make_problem(p), p.q, p.attn_sink, o, options);
}

void sparse_mla_attention(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o,
                          const SparseMlaFastOptions& options) {
  validate(p, o);
  require_layout(p.kv.geo, MlaLayout::BF16, "kv");
  if (options.algo != MlaFastAlgo::fused)
    throw InvalidArgument("options.algo", "sparse_mla_attention is the materialized form: it has no staged variant");
  const MlaProblem m = detail::make_problem(p);
  run_engine(m, o, resolve_num_splits(m, options));
}

}  // namespace dsa
