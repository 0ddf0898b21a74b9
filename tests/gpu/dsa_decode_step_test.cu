// The DSA decode step on the GPU (gpu/dsa_decode_step.cpp, SPEC §6.5) checked stage by stage
// against the CPU oracle: random steps (B, next_n 1..4, indexer H 32/64, standard and preshuffle
// K caches of several page sizes, 1-D and 2-D context lengths, ctx not a multiple of the page and
// ctx < next_n, max_ctx clipping, topk small / ≥ ctx / 2048, V32, MODEL1 and MODEL1_SPLIT MLA
// caches with their own page size and block table, bad MLA table entries (invalid slots), sinks,
// NaN poison in every cache token no visible position maps to, sentinel-filled outputs and
// workspace). Stages:
//   1. logits — dsa::judge_paged_mqa_logits (fp64 gold, per-position budget, every position of
//      [0, max_ctx) written);
//   2. indices — dsa::check_topk (SPEC §6.4) on the GPU's own logits, and consistency with the
//      gold logits' ranking within their budgets (every selected position could outrank every
//      unselected visible one given values inside the budgets);
//   3. attention — out / lse / max_logits against the gold decode over the GPU's OWN indices with
//      the oracle's per-element budget (the result does not depend on index order beyond rounding).
// Then: graph replay ≡ eager and 20 reruns bit-identical; argument errors name the argument and
// write nothing. Case count: DSA_GPU_CASES (default 400), capped by DSA_GPU_MAX_CASES.
#include "indexer_gpu_cases.hpp"
#include "sparse_mla_gpu_case.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dsa/error.hpp"
#include "dsa/gpu/dsa_decode_step.hpp"
#include "dsa/gpu/topk.hpp"
#include "dsa/judge.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/topk.hpp"

namespace {

using namespace dsa;
using namespace dsa::gpu;
using namespace dsa::gpu::testing;

constexpr std::uint32_t kIndexSentinel = 0x5A5A5A5Au;  // no position and not −1

// One step on the host and its device mirror.
struct StepCase {
  std::string label;
  // Indexer.
  std::int64_t B = 1, N = 1, H_idx = 64, max_blocks = 0, max_ctx = 0;
  ContextLens kind = ContextLens::per_sequence;
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  IndexKGeometry idx_geo;
  std::vector<std::uint8_t> idx_cache, idx_q;
  std::vector<float> idx_w;
  std::vector<std::int32_t> ctx, idx_bt;
  std::int32_t topk = 1;
  // Attention: the cache's `indices` stay empty (the step makes them).
  std::int32_t H = 1;
  ReaderModel reader;
  CaseSource mla;
  std::vector<std::uint16_t> q;
  std::vector<float> sink;
  SparseMlaConfig config;
  // Device copies.
  DeviceVec<std::uint8_t> d_idx_cache, d_idx_q;
  DeviceVec<float> d_idx_w, d_sink;
  DeviceVec<std::int32_t> d_ctx, d_idx_bt;
  DeviceVec<std::uint16_t> d_q;

  std::int64_t rows() const { return B * N; }
  std::int64_t row_end(std::int64_t b, std::int64_t i) const {
    return kind == ContextLens::per_sequence ? ctx[b] - N + i + 1 : ctx[b * N + i];
  }
  // Positions [0, seq_end(b)) are visible to some row of sequence b.
  std::int64_t seq_end(std::int64_t b) const {
    std::int64_t e = 0;
    for (std::int64_t i = 0; i < N; ++i) e = std::max(e, std::min(row_end(b, i), max_ctx));
    return e;
  }

  void upload() {
    d_idx_cache = DeviceVec<std::uint8_t>(idx_cache);
    d_idx_q = DeviceVec<std::uint8_t>(idx_q);
    d_idx_w = DeviceVec<float>(idx_w);
    d_ctx = DeviceVec<std::int32_t>(ctx);
    d_idx_bt = DeviceVec<std::int32_t>(idx_bt);
    mla.upload();
    d_q = DeviceVec<std::uint16_t>(q);
    d_sink = DeviceVec<float>(sink);
  }

  // The step on the device (indices left to the step).
  DsaDecodeStepParams device_params() const {
    DsaDecodeStepParams p;
    auto& x = p.indexer;
    x.batch = B;
    x.next_n = N;
    x.num_heads = H_idx;
    x.head_dim = 128;
    x.q = d_idx_q.get();
    x.q_fp8 = q_fp8;
    x.weights = d_idx_w.get();
    x.context_lens_kind = kind;
    x.context_lens = d_ctx.get();
    x.block_table = d_idx_bt.get();
    x.max_blocks = max_blocks;
    x.cache = idx_geo;
    x.cache_bytes = d_idx_cache.get();
    x.reader_layout = idx_geo.layout;
    x.max_ctx = max_ctx;
    p.topk = topk;
    p.mla = mla_params(true);
    return p;
  }

  SparseMlaDecodeParams mla_params(bool device) const {
    SparseMlaDecodeParams m;
    m.B = B;
    m.S_q = N;
    m.H = H;
    m.index_mode = IndexMode::logical;
    m.cache = device ? mla.device_view() : mla.host_view();
    m.block_table = device ? dspan(mla.d_block_table) : std::span<const std::int32_t>(mla.block_table);
    m.max_blocks = mla.max_blocks;
    m.q = device ? dspan(d_q) : std::span<const std::uint16_t>(q);
    m.attn_sink = device ? dspan(d_sink) : std::span<const float>(sink);
    m.reader = reader;
    return m;
  }

  // The reference's indexer call over the host copies (logits not set: the judge computes them).
  dsa::PagedMqaLogitsParams indexer_reference() const {
    dsa::PagedMqaLogitsParams p;
    p.batch = B;
    p.next_n = N;
    p.num_heads = H_idx;
    p.head_dim = 128;
    p.q = idx_q;
    p.q_fp8 = q_fp8;
    p.weights = idx_w;
    p.context_lens_kind = kind;
    p.context_lens = ctx;
    p.block_table = idx_bt;
    p.max_blocks = max_blocks;
    p.cache = IndexKCacheView{idx_geo, idx_cache};
    p.reader_layout = idx_geo.layout;
    p.max_ctx = max_ctx;
    p.logits_row_stride = max_ctx;
    return p;
  }
};

struct CaseOptions {
  std::int64_t max_len = 300;
  std::int64_t max_batch = 3;
  std::int64_t next_n = 0;      // 0: random in [1, 4]
  std::int32_t heads = 0;       // MLA heads; 0: random
  std::int32_t topk = 0;        // 0: random
  int layout_pick = -1;         // MLA: 0 V32, 1 MODEL1, 2 MODEL1_SPLIT; −1 random
};

std::int32_t pick_mla_heads(Rng& rng) {
  const int u = static_cast<int>(uniform(rng, 0, 99));
  if (u < 70) return static_cast<std::int32_t>(uniform(rng, 1, 8));
  if (u < 95) return static_cast<std::int32_t>(uniform(rng, 9, 24));
  return uniform(rng, 0, 1) ? 64 : 128;
}

StepCase make_case(std::uint64_t seed, CaseOptions o = {}) {
  Rng rng(seed);
  StepCase c;
  if (o.max_len == 300 && uniform(rng, 0, 19) == 0) {  // a long context, few rows
    o.max_len = 3000;
    o.max_batch = 2;
  }
  // ---- indexer ----
  const IndexKLayout idx_layout = uniform(rng, 0, 1) ? IndexKLayout::preshuffle : IndexKLayout::standard;
  const bool pre = idx_layout == IndexKLayout::preshuffle;
  const std::int32_t P = pre ? std::vector<std::int32_t>{16, 32, 48, 64, 64}[uniform(rng, 0, 4)]
                             : std::vector<std::int32_t>{1, 3, 16, 64, 64}[uniform(rng, 0, 4)];
  c.H_idx = uniform(rng, 0, 1) ? 64 : 32;
  c.N = o.next_n > 0 ? o.next_n : uniform(rng, 1, 4);
  c.B = uniform(rng, 1, o.max_batch);
  c.kind = uniform(rng, 0, 2) == 0 ? ContextLens::per_row : ContextLens::per_sequence;
  Fp8Format k_fp8 = Fp8Format::e4m3fn;
  if (uniform(rng, 0, 9) == 0) {  // the emulated fp8 product (HIP's formats)
    k_fp8 = Fp8Format::e4m3fnuz;
    c.q_fp8 = uniform(rng, 0, 1) ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn;
  }
  auto length = [&]() -> std::int32_t {
    switch (uniform(rng, 0, 7)) {
      case 0: return 0;
      case 1: return static_cast<std::int32_t>(uniform(rng, 0, c.N));  // ctx < next_n
      case 2: return static_cast<std::int32_t>(std::max<std::int64_t>(0, P * uniform(rng, 1, 3) + uniform(rng, -1, 1)));
      default: return static_cast<std::int32_t>(uniform(rng, 0, o.max_len));
    }
  };
  c.ctx.resize(static_cast<std::size_t>(c.kind == ContextLens::per_row ? c.rows() : c.B));
  for (auto& x : c.ctx) x = length();
  std::int64_t max_end = 0;
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t i = 0; i < c.N; ++i) max_end = std::max(max_end, c.row_end(b, i));
  c.max_ctx = uniform(rng, 0, 5) == 0 ? uniform(rng, std::max<std::int64_t>(0, max_end - 20), max_end)
                                      : max_end + uniform(rng, 0, 40);
  if (c.max_ctx == 0 && uniform(rng, 0, 1)) c.max_ctx = 1;

  std::vector<std::int64_t> idx_blocks(static_cast<std::size_t>(c.B));
  for (std::int64_t b = 0; b < c.B; ++b) idx_blocks[b] = (c.seq_end(b) + P - 1) / P;
  c.max_blocks = *std::max_element(idx_blocks.begin(), idx_blocks.end()) + uniform(rng, 0, 2);
  const std::int64_t idx_num_blocks = P == 1 ? uniform(rng, 1, 2 * o.max_len + 1) : uniform(rng, 1, 10);
  c.idx_geo = IndexKGeometry::packed(idx_layout, k_fp8, idx_num_blocks, P, 128);
  c.idx_geo.block_stride_bytes += 4 * uniform(rng, 0, 4);
  c.idx_cache.assign(static_cast<std::size_t>(c.idx_geo.bytes()), 0);
  const std::int32_t garbage[] = {-1, static_cast<std::int32_t>(idx_num_blocks), INT_MIN, INT_MAX};
  c.idx_bt.resize(static_cast<std::size_t>(c.B * c.max_blocks));
  for (auto& e : c.idx_bt) e = garbage[uniform(rng, 0, 3)];  // never read
  std::set<std::pair<std::int64_t, std::int64_t>> idx_read;
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t j = 0; j < idx_blocks[b]; ++j) {
      const auto blk = static_cast<std::int32_t>(uniform(rng, 0, idx_num_blocks - 1));  // aliasing allowed
      c.idx_bt[b * c.max_blocks + j] = blk;
      for (std::int64_t t = 0; t < P && j * P + t < c.seq_end(b); ++t) idx_read.insert({blk, t});
    }
  for (const auto& [blk, t] : idx_read) fill_index_k_token(c.idx_cache, c.idx_geo, blk, t, rng);
  poison_index_k_tokens(c.idx_cache, c.idx_geo, idx_read);
  c.idx_q = random_fp8_vector(rng, static_cast<std::size_t>(c.rows() * c.H_idx * 128), c.q_fp8);
  c.idx_w = random_weights(rng, static_cast<std::size_t>(c.rows() * c.H_idx));

  // ---- top-k: small, at least every visible position, or DeepSeek's 2048 ----
  switch (o.topk > 0 ? 3 : uniform(rng, 0, 2)) {
    case 0: c.topk = static_cast<std::int32_t>(uniform(rng, 1, 64)); break;
    case 1: c.topk = static_cast<std::int32_t>(std::min<std::int64_t>(kTopkMaxK, std::max<std::int64_t>(1, c.max_ctx + uniform(rng, 0, 5)))); break;
    case 2: c.topk = 2048; break;
    default: c.topk = o.topk;
  }

  // ---- attention: its own cache, page size and block table over the same positions ----
  const int lp = o.layout_pick >= 0 ? o.layout_pick : std::vector<int>{0, 0, 0, 1, 1, 2}[uniform(rng, 0, 5)];
  const CacheKind kind = lp == 0 ? CacheKind{MlaLayout::V32, 576} : lp == 1 ? CacheKind{MlaLayout::MODEL1, 512}
                                                                           : CacheKind{MlaLayout::MODEL1_SPLIT, 512};
  const Fp8Format mla_fp8 = uniform(rng, 0, 4) == 0 ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn;
  const std::int32_t P_mla = std::vector<std::int32_t>{1, 16, 64, 64}[uniform(rng, 0, 3)];
  std::int64_t mla_need = 0;
  for (std::int64_t b = 0; b < c.B; ++b) mla_need = std::max(mla_need, (c.seq_end(b) + P_mla - 1) / P_mla);
  const std::int64_t mla_blocks = P_mla == 1 ? uniform(rng, 1, 2 * o.max_len + 1) : uniform(rng, 1, 12);
  auto g = MlaCacheGeometry::packed(kind.layout, mla_fp8, mla_blocks, P_mla, kind.dim);
  switch (uniform(rng, 0, 3)) {
    case 0: g.block_stride_bytes += uniform(rng, 1, 40); break;      // unaligned pages: byte copies
    case 1: g.block_stride_bytes += 16 * uniform(rng, 1, 4); break;  // aligned, padded
    default: break;
  }
  MlaCacheBuffer buffer(g);
  c.mla.geo = buffer.geo;
  c.mla.values = std::move(buffer.values);
  c.mla.scales = std::move(buffer.scales);
  fill_random_bytes(c.mla.values, rng);
  fill_random_bytes(c.mla.scales, rng);
  c.mla.max_blocks = std::max<std::int64_t>(1, mla_need + uniform(rng, 0, 2));
  c.mla.block_table.resize(static_cast<std::size_t>(c.B * c.mla.max_blocks));
  const std::int32_t bad[] = {-1, static_cast<std::int32_t>(mla_blocks), INT_MIN, INT_MAX};
  const bool bad_entries = uniform(rng, 0, 9) == 0;  // some needed entries invalid: their slots count nothing
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t j = 0; j < c.mla.max_blocks; ++j) {
      auto& e = c.mla.block_table[static_cast<std::size_t>(b * c.mla.max_blocks + j)];
      const bool needed = j * P_mla < c.seq_end(b);
      e = needed && !(bad_entries && uniform(rng, 0, 3) == 0) ? static_cast<std::int32_t>(uniform(rng, 0, mla_blocks - 1))
                                                              : bad[uniform(rng, 0, 3)];
      if (!needed || e < 0 || e >= mla_blocks) continue;
      for (std::int64_t t = 0; t < P_mla && j * P_mla + t < c.seq_end(b); ++t) c.mla.referenced.insert({e, t});
    }
  fill_tokens(c.mla, rng);  // finite where referenced, NaN everywhere else
  c.H = o.heads > 0 ? o.heads : pick_mla_heads(rng);
  if (c.H >= 64 && o.heads == 0) c.topk = std::min<std::int32_t>(c.topk, 256);  // keeps the fp64 gold quick
  c.reader = uniform(rng, 0, 1) ? ReaderModel::staged_bf16() : ReaderModel::flashmla_sm90();
  c.q = random_q(c.rows() * c.H * kind.dim, rng);
  if (uniform(rng, 0, 2) == 0) c.sink = random_sink(c.H, rng);
  c.config = builtin_config(ConfigTable::default_table);
  c.config.block_n = uniform(rng, 0, 1) ? 64 : 32;
  c.config.num_splits = uniform(rng, 0, 2) == 0 ? 0 : (1 << uniform(rng, 0, 4));

  c.label = "seed " + std::to_string(seed) + ": " + to_string(idx_layout) + " P=" + std::to_string(P) +
            " B=" + std::to_string(c.B) + " N=" + std::to_string(c.N) + " H_idx=" + std::to_string(c.H_idx) + " " +
            to_string(c.kind) + " max_ctx=" + std::to_string(c.max_ctx) + " k " + to_string(k_fp8) + " topk=" +
            std::to_string(c.topk) + " | " + name(kind) + " " + to_string(mla_fp8) + " P=" + std::to_string(P_mla) +
            " H=" + std::to_string(c.H) + (c.sink.empty() ? "" : " sink") + (bad_entries ? " bad-table" : "") +
            " block_n " + std::to_string(c.config.block_n) + " splits " + std::to_string(c.config.num_splits);
  return c;
}

// ---- one call and its read-back --------------------------------------------------------------
struct StepResult {
  std::vector<float> logits;          // [rows][plan.logits_row_stride]
  std::vector<std::int32_t> indices;  // [rows][topk]
  std::int32_t status = -1;
  GotOutputs got;
};

// A workspace of exactly the plan's bytes: sentinel logits, sentinel indices, 0xFF elsewhere.
std::vector<std::uint32_t> poisoned_workspace(const DsaDecodeStepPlan& plan) {
  std::vector<std::uint32_t> w(static_cast<std::size_t>(plan.workspace_bytes / 4), 0xFFFFFFFFu);
  std::fill_n(w.begin() + plan.logits_offset / 4, plan.logits_bytes / 4, dsa::gpu::testing::kSentinelF32);
  std::fill_n(w.begin() + plan.indices_offset / 4, plan.indices_bytes / 4, kIndexSentinel);
  return w;
}

struct StepBuffers {
  DeviceVec<std::uint32_t> ws;
  DeviceOutputs out;
  StepBuffers(const DsaDecodeStepPlan& plan, std::int64_t rows, std::int32_t H)
      : ws(static_cast<std::size_t>(plan.workspace_bytes / 4)), out(rows, H) {}
  void poison(const DsaDecodeStepPlan& plan) {
    ws.upload(poisoned_workspace(plan));
    out.poison();
  }
  DeviceWorkspace view(const DsaDecodeStepPlan& plan) { return {ws.get(), plan.workspace_bytes}; }
  StepResult download(const DsaDecodeStepPlan& plan) {
    const DsaDecodeStepBuffers b = dsa_decode_step_buffers(plan, view(plan));
    StepResult r;
    r.logits.resize(static_cast<std::size_t>(plan.logits_bytes / 4));
    r.indices.resize(static_cast<std::size_t>(plan.indices_bytes / 4));
    if (!r.logits.empty()) DSA_GPU_CHECK(cudaMemcpy(r.logits.data(), b.logits, plan.logits_bytes, cudaMemcpyDeviceToHost));
    if (!r.indices.empty())
      DSA_GPU_CHECK(cudaMemcpy(r.indices.data(), b.indices, plan.indices_bytes, cudaMemcpyDeviceToHost));
    DSA_GPU_CHECK(cudaMemcpy(&r.status, b.status, 4, cudaMemcpyDeviceToHost));
    r.got = out.download();
    return r;
  }
};

StepResult run_step(const StepCase& c, DsaDecodeStepPlan* plan_out = nullptr) {
  const DsaDecodeStepParams p = c.device_params();
  const DsaDecodeStepPlan plan = plan_dsa_decode_step(p, c.config, device_sm_count());
  if (plan_out) *plan_out = plan;
  StepBuffers buf(plan, c.rows(), c.H);
  buf.poison(plan);
  dsa_decode_step(p, buf.out.view(), plan, buf.view(plan), nullptr);
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  return buf.download(plan);
}

// ---- the stage checks ------------------------------------------------------------------------
double logits_u_acc(const StepCase& c) { return logits_accumulator_unit(c.q_fp8, c.idx_geo.fp8); }

KernelPrecision logits_precision(const StepCase& c) {
  KernelPrecision k = kernel_precision("fp32p", Op::paged_mqa_logits);
  k.u_acc = logits_u_acc(c);
  return k;
}

struct StageWorst {
  double logits = 0, attention = 0;
  std::int64_t selected = 0, rows_full = 0;  // selected slots; rows where topk < visible
};

// Stage 1: the logits against the fp64 gold within budget, every position of [0, max_ctx)
// written, [max_ctx, stride) untouched.
std::string check_logits(const StepCase& c, const DsaDecodeStepPlan& plan, const StepResult& r, StageWorst& w) {
  JudgeOptions o;
  o.precision = logits_precision(c);
  o.sentinel_f32 = dsa::gpu::testing::kSentinelF32;
  o.write_contract = WriteContract::all;
  const CaseResult cr = judge_paged_mqa_logits(c.indexer_reference(), r.logits, plan.logits_row_stride, o);
  w.logits = std::max(w.logits, cr.worst_ratio());
  if (!cr.pass()) {
    std::string why = "logits: " + cr.error;
    for (const auto& out : cr.outputs)
      if (!out.cmp.pass) why += out.name + ": " + out.cmp.failure + " at " + out.cmp.worst_coordinate;
    return why;
  }
  for (std::int64_t row = 0; row < plan.rows; ++row)
    for (std::int64_t t = plan.max_ctx; t < plan.logits_row_stride; ++t)
      if (f32_bits(r.logits[row * plan.logits_row_stride + t]) != dsa::gpu::testing::kSentinelF32)
        return "logits: row " + std::to_string(row) + " position " + std::to_string(t) + " ≥ max_ctx was written";
  return "";
}

// Stage 2: the SPEC §6.4 predicate on the GPU's own logits, then the selection against the gold
// logits: some values inside every position's budget rank every selected position at or above
// every unselected visible one, i.e. min over selected (gold + budget) ≥ max over the rest
// (gold − budget).
std::string check_indices(const StepCase& c, const DsaDecodeStepPlan& plan, const StepResult& r, StageWorst& w) {
  const dsa::PagedMqaLogitsParams ref = c.indexer_reference();
  std::vector<VisibleRange> ranges;  // SPEC §6.2's rows, as the logits and the top-k see them
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t i = 0; i < c.N; ++i) ranges.push_back(paged_visible_range(c.kind, c.ctx.data(), b, i, c.N, c.max_ctx));
  const TopkVerdict v = check_topk(r.logits, plan.rows, plan.logits_row_stride, ranges, c.topk, r.indices);
  if (!v.accepted) return "indices on the GPU's logits: " + v.reason;
  const LogitsBudget lb = paged_mqa_logits_budget(ref, logits_precision(c));
  for (std::int64_t row = 0; row < plan.rows; ++row) {
    const VisibleRange vr = ranges[static_cast<std::size_t>(row)];
    const std::int64_t m = std::min<std::int64_t>(c.topk, vr.size());
    w.selected += m;
    if (m == vr.size()) continue;  // every visible position taken: nothing to rank
    ++w.rows_full;
    std::vector<std::uint8_t> chosen(static_cast<std::size_t>(plan.max_ctx), 0);
    double lo_selected = std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < m; ++j) {
      const std::int32_t t = r.indices[static_cast<std::size_t>(row * c.topk + j)];
      chosen[static_cast<std::size_t>(t)] = 1;
      const std::size_t at = static_cast<std::size_t>(row * lb.width + t);
      lo_selected = std::min(lo_selected, lb.gold[at] + lb.budget[at]);
    }
    for (std::int64_t t = vr.begin; t < vr.end; ++t) {
      if (chosen[static_cast<std::size_t>(t)]) continue;
      const std::size_t at = static_cast<std::size_t>(row * lb.width + t);
      if (lb.gold[at] - lb.budget[at] > lo_selected)
        return "indices against the gold logits: row " + std::to_string(row) + " leaves out position " +
               std::to_string(t) + " (gold " + std::to_string(lb.gold[at]) + " ± " + std::to_string(lb.budget[at]) +
               ") which outranks a selected one beyond every budget (lowest selected gold + budget " +
               std::to_string(lo_selected) + ")";
    }
  }
  return "";
}

// Stage 3: the attention outputs against the gold decode over the GPU's own indices.
std::string check_attention(const StepCase& c, const DsaDecodeStepPlan& plan, const StepResult& r, StageWorst& w) {
  SparseMlaDecodeParams h = c.mla_params(false);
  h.indices = r.indices;
  h.topk = c.topk;
  const SparseMlaBudget b =
      sparse_mla_decode_budget(h, gpu_precision(), {plan.mla.num_splits, plan.mla.config.block_n});
  const Verdict v = check_against_budget(r.got, b, true);
  w.attention = std::max(w.attention, v.worst_ratio);
  return v.failure.empty() ? "" : "attention (" + std::to_string(plan.mla.num_splits) + " splits): " + v.failure;
}

std::string check_step(const StepCase& c, const DsaDecodeStepPlan& plan, const StepResult& r, StageWorst& w) {
  if (r.status != 0) return "status " + std::to_string(r.status);
  std::string e = check_logits(c, plan, r, w);
  if (e.empty()) e = check_indices(c, plan, r, w);
  if (e.empty()) e = check_attention(c, plan, r, w);
  return e;
}

std::string identical_step(const StepResult& a, const StepResult& b) {
  if (const std::int64_t i = first_difference(a.logits, b.logits); i >= 0) return "logits differ at " + std::to_string(i);
  if (const std::int64_t i = first_difference(a.indices, b.indices); i >= 0) return "indices differ at " + std::to_string(i);
  if (a.status != b.status) return "status differs";
  return check_identical(a.got, b.got);
}

class DsaDecodeStepGpu : public GpuTest {};

TEST_F(DsaDecodeStepGpu, StageByStageAgainstTheOracle) {
  const std::uint64_t n = cases_to_run(static_cast<std::uint64_t>(case_count(400)));
  StageWorst worst;
  std::int64_t passed = 0, long_ctx = 0, top2048 = 0;
  std::map<std::string, int> kinds;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    StepCase c = make_case(0xD5A00000ull + i);
    c.upload();
    DsaDecodeStepPlan plan;
    const StepResult r = run_step(c, &plan);
    const std::string e = check_step(c, plan, r, worst);
    ASSERT_EQ(e, "") << c.label;
    ++passed;
    long_ctx += c.max_ctx > 1000;
    top2048 += c.topk == 2048;
    ++kinds[std::string(to_string(c.idx_geo.layout)) + " + " + to_string(c.mla.geo.layout)];
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ judged   ] %lld steps passed in %.1f s (%lld with max_ctx > 1000, %lld with topk 2048)\n",
              static_cast<long long>(passed), secs, static_cast<long long>(long_ctx), static_cast<long long>(top2048));
  for (const auto& [k, count] : kinds) std::printf("             %-32s %d\n", k.c_str(), count);
  std::printf("             worst error/budget: logits %.3f, attention %.3f; %lld rows ranked (topk < visible), "
              "%lld slots selected\n",
              worst.logits, worst.attention, static_cast<long long>(worst.rows_full),
              static_cast<long long>(worst.selected));
  EXPECT_EQ(passed, static_cast<std::int64_t>(n));
}

// Decode-sized steps: DeepSeek's shapes scaled down (topk 2048 over a few thousand positions,
// 128 MLA heads), both MLA layouts.
TEST_F(DsaDecodeStepGpu, DecodeSizedSteps) {
  StageWorst worst;
  for (int i = 0; i < static_cast<int>(cases_to_run(4)); ++i) {
    CaseOptions o;
    o.max_len = 5000;
    o.max_batch = 2;
    o.next_n = 1 + i % 2;
    o.heads = 128;
    o.topk = 2048;
    o.layout_pick = i % 2;
    StepCase c = make_case(0xB16000ull + static_cast<std::uint64_t>(i), o);
    c.upload();
    DsaDecodeStepPlan plan;
    const StepResult r = run_step(c, &plan);
    ASSERT_EQ(check_step(c, plan, r, worst), "") << c.label;
    std::printf("  %s: %d splits, worst error/budget logits %.3f attention %.3f\n", c.label.c_str(), plan.mla.num_splits,
                worst.logits, worst.attention);
  }
}

// One CUDA graph holds the whole step; its replay gives the eager bits, and 20 eager reruns give
// the same bits too (logits, indices, status, out, lse, max_logits).
TEST_F(DsaDecodeStepGpu, GraphReplayAndRerunsAreBitIdentical) {
  CaseOptions o;
  o.max_len = 3000;
  o.max_batch = 4;
  o.next_n = 2;
  o.heads = 128;
  o.topk = 2048;
  o.layout_pick = 0;
  StepCase c = make_case(4242, o);
  c.config = builtin_config(ConfigTable::default_table);  // the heuristic's splits
  c.upload();
  dsa_decode_step_warmup(nullptr);
  cudaStream_t stream;
  DSA_GPU_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const DsaDecodeStepParams p = c.device_params();
  const DsaDecodeStepPlan plan = plan_dsa_decode_step(p, c.config, device_sm_count());
  StepBuffers eager(plan, c.rows(), c.H), graph(plan, c.rows(), c.H);
  eager.poison(plan);
  dsa_decode_step(p, eager.out.view(), plan, eager.view(plan), stream);
  DSA_GPU_CHECK(cudaStreamSynchronize(stream));
  const StepResult want = eager.download(plan);
  StageWorst worst;
  ASSERT_EQ(check_step(c, plan, want, worst), "") << c.label;
  for (int rerun = 0; rerun < static_cast<int>(cases_to_run(20)); ++rerun) {
    eager.poison(plan);
    dsa_decode_step(p, eager.out.view(), plan, eager.view(plan), stream);
    DSA_GPU_CHECK(cudaStreamSynchronize(stream));
    ASSERT_EQ(identical_step(eager.download(plan), want), "") << "rerun " << rerun << ", " << c.label;
  }
  cudaGraph_t g;
  cudaGraphExec_t exec;
  DSA_GPU_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  dsa_decode_step(p, graph.out.view(), plan, graph.view(plan), stream);
  DSA_GPU_CHECK(cudaStreamEndCapture(stream, &g));
  DSA_GPU_CHECK(cudaGraphInstantiateWithFlags(&exec, g, 0));
  for (int replay = 0; replay < 3; ++replay) {
    graph.poison(plan);
    DSA_GPU_CHECK(cudaGraphLaunch(exec, stream));
    DSA_GPU_CHECK(cudaStreamSynchronize(stream));
    ASSERT_EQ(identical_step(graph.download(plan), want), "") << "replay " << replay << ", " << c.label;
  }
  std::printf("  %s: %d splits, graph replay and %d reruns bit-identical\n", c.label.c_str(), plan.mla.num_splits,
              static_cast<int>(cases_to_run(20)));
  DSA_GPU_CHECK(cudaGraphExecDestroy(exec));
  DSA_GPU_CHECK(cudaGraphDestroy(g));
  DSA_GPU_CHECK(cudaStreamDestroy(stream));
}

// ---- bad input -------------------------------------------------------------------------------
struct Breakage {
  const char* argument;  // the name the error must carry
  std::function<void(DsaDecodeStepParams&, SparseMlaOutputs&, DsaDecodeStepPlan&, DeviceWorkspace&)> edit;
};

std::vector<Breakage> breakages() {
  using P = DsaDecodeStepParams;
  using O = SparseMlaOutputs;
  using L = DsaDecodeStepPlan;
  using W = DeviceWorkspace;
  std::vector<Breakage> v;
  v.push_back({"topk", [](P& p, O&, L&, W&) { p.topk = 0; }});
  v.push_back({"topk", [](P& p, O&, L&, W&) { p.topk = 2049; }});
  v.push_back({"mla.B", [](P& p, O&, L&, W&) { p.mla.B += 1; }});
  v.push_back({"mla.S_q", [](P& p, O&, L&, W&) { p.mla.S_q += 1; }});
  v.push_back({"mla.indices", [](P& p, O& o, L&, W&) { p.mla.indices = {reinterpret_cast<const std::int32_t*>(o.lse.data()), 1}; }});
  v.push_back({"mla.topk_length", [](P& p, O& o, L&, W&) { p.mla.topk_length = {reinterpret_cast<const std::int32_t*>(o.lse.data()), 1}; }});
  v.push_back({"indexer.num_heads", [](P& p, O&, L&, W&) { p.indexer.num_heads = 16; }});
  v.push_back({"indexer.next_n", [](P& p, O&, L&, W&) { p.indexer.next_n = 5, p.mla.S_q = 5; }});
  v.push_back({"indexer.q", [](P& p, O&, L&, W&) { p.indexer.q += 4; }});
  v.push_back({"indexer.k_scale_at", [](P& p, O&, L&, W&) { p.indexer.k_scale_at = KScaleAt::per_head; }});
  v.push_back({"mla.conventions", [](P& p, O&, L&, W&) { p.mla.conventions = MlaConventions::xkernels(); }});
  v.push_back({"mla.reader.operand", [](P& p, O&, L&, W&) { p.mla.reader = ReaderModel::exact_fp32(); }});
  v.push_back({"mla.q", [](P& p, O&, L&, W&) { p.mla.q = {p.mla.q.data() + 1, p.mla.q.size() - 1}; }});
  v.push_back({"out", [](P&, O& o, L&, W&) { o.out = o.out.first(o.out.size() - 1); }});
  v.push_back({"lse", [](P&, O& o, L&, W&) { o.lse = o.lse.first(o.lse.size() - 1); }});
  v.push_back({"workspace", [](P&, O&, L&, W& w) { w.bytes -= 4; }});
  v.push_back({"workspace", [](P&, O&, L&, W& w) { w.ptr = static_cast<std::uint8_t*>(w.ptr) + 16; }});
  v.push_back({"plan", [](P& p, O&, L&, W&) { p.topk = p.topk == 1 ? 2 : p.topk - 1; }});
  v.push_back({"plan", [](P& p, O&, L&, W&) { p.indexer.max_ctx += 1; }});
  v.push_back({"plan.algo", [](P&, O&, L& l, W&) { l.mla.algo = MlaAlgo::staged; }});
  return v;
}

// Every broken argument throws its name before any launch: the outputs and the whole workspace
// keep their sentinels.
TEST_F(DsaDecodeStepGpu, BadArgumentsAreNamedAndWriteNothing) {
  CaseOptions o;
  o.max_len = 200;
  o.heads = 16;
  o.topk = 64;
  o.layout_pick = 0;
  StepCase c = make_case(77, o);
  c.upload();
  const DsaDecodeStepParams good = c.device_params();
  const DsaDecodeStepPlan good_plan = plan_dsa_decode_step(good, c.config, device_sm_count());
  StepBuffers buf(good_plan, c.rows(), c.H);
  buf.poison(good_plan);
  const std::vector<std::uint32_t> ws_before = poisoned_workspace(good_plan);
  for (const Breakage& k : breakages()) {
    DsaDecodeStepParams p = good;
    SparseMlaOutputs out = buf.out.view();
    DsaDecodeStepPlan plan = good_plan;
    DeviceWorkspace ws = buf.view(good_plan);
    k.edit(p, out, plan, ws);
    EXPECT_EQ(rejected_argument([&] { dsa_decode_step(p, out, plan, ws, nullptr); }), k.argument);
  }
  // A layout tag the indexer call does not read: dsa::LayoutMismatch.
  DsaDecodeStepParams p = good;
  p.indexer.reader_layout =
      p.indexer.cache.layout == IndexKLayout::standard ? IndexKLayout::preshuffle : IndexKLayout::standard;
  EXPECT_THROW(dsa_decode_step(p, buf.out.view(), good_plan, buf.view(good_plan), nullptr), LayoutMismatch);
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  const GotOutputs after = buf.out.download();
  for (const auto x : after.out) ASSERT_EQ(x, dsa::gpu::testing::kSentinelBf16) << "out was written";
  for (const float x : after.lse) ASSERT_EQ(f32_bits(x), dsa::gpu::testing::kSentinelF32) << "lse was written";
  for (const float x : after.max_logits) ASSERT_EQ(f32_bits(x), dsa::gpu::testing::kSentinelF32) << "max_logits was written";
  ASSERT_EQ(first_difference(buf.ws.download(), ws_before), -1) << "the workspace was written";
  // And the unbroken call then runs and passes.
  dsa_decode_step(good, buf.out.view(), good_plan, buf.view(good_plan), nullptr);
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  StageWorst worst;
  EXPECT_EQ(check_step(c, good_plan, buf.download(good_plan), worst), "") << c.label;
}

// A negative context length lives on the device: the logits kernel's check sets the status bit
// and leaves the logits untouched; the status decodes to the error dsa::validate names.
TEST_F(DsaDecodeStepGpu, DeviceSideBadContextLengthSetsTheStatus) {
  // Heads 8 and 128 (one and two head groups); the second case's plan splits (B = 1), so the
  // combine kernel's gate is exercised as well as the attention kernel's.
  for (const std::int32_t heads : {8, 128}) {
    CaseOptions o;
    o.heads = heads;
    StepCase c = make_case(91 + heads, o);
    c.ctx[0] = -5;
    c.upload();
    DsaDecodeStepPlan plan;
    const StepResult r = run_step(c, &plan);
    EXPECT_EQ(r.status & kPagedLogitsBadContextLen, kPagedLogitsBadContextLen) << c.label;
    for (const float x : r.logits) ASSERT_EQ(f32_bits(x), dsa::gpu::testing::kSentinelF32) << "a logit was written: " << c.label;
    // SPEC §8: nothing written — the attention kernels read the status on the device.
    for (const auto x : r.got.out) ASSERT_EQ(x, dsa::gpu::testing::kSentinelBf16) << "out was written: " << c.label;
    for (const float x : r.got.lse) ASSERT_EQ(f32_bits(x), dsa::gpu::testing::kSentinelF32) << "lse was written: " << c.label;
    std::cout << "[ status   ] " << c.label << ": splits " << plan.mla.num_splits << ", outputs untouched\n";
    try {
      check_paged_mqa_logits_status(r.status);
      ADD_FAILURE() << "no error";
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(e.argument(), "context_lens");
    }
  }
}

// ---- host-side validation and planning (no device needed) -----------------------------------
DsaDecodeStepParams fake_params() {
  DsaDecodeStepParams p;
  auto& x = p.indexer;
  x.batch = 2;
  x.next_n = 2;
  x.num_heads = 64;
  x.head_dim = 128;
  x.q = fake_device_ptr<std::uint8_t>();
  x.weights = fake_device_ptr<float>();
  x.context_lens = fake_device_ptr<std::int32_t>();
  x.block_table = fake_device_ptr<std::int32_t>();
  x.max_blocks = 16;
  x.cache = IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, 40, 64, 128);
  x.cache_bytes = fake_device_ptr<std::uint8_t>();
  x.reader_layout = IndexKLayout::standard;
  x.max_ctx = 1001;
  p.topk = 2048;
  auto& m = p.mla;
  m.B = 2;
  m.S_q = 2;
  m.H = 128;
  m.q = {fake_device_ptr<std::uint16_t>(), static_cast<std::size_t>(4 * 128 * 576)};
  m.cache.geo = MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 40, 64);
  m.cache.values = {fake_device_ptr<std::uint8_t>(), static_cast<std::size_t>(m.cache.geo.values_bytes())};
  m.block_table = {fake_device_ptr<std::int32_t>(), 2 * 16};
  m.max_blocks = 16;
  return p;
}

TEST(DsaDecodeStepValidation, GlueAndStageErrorsAreNamed) {
  const SparseMlaConfig cfg = builtin_config(ConfigTable::default_table);
  auto rejected = [&](const std::function<void(DsaDecodeStepParams&)>& edit) {
    DsaDecodeStepParams p = fake_params();
    edit(p);
    const std::string a = rejected_argument([&] { validate(p); });
    EXPECT_EQ(rejected_argument([&] { plan_dsa_decode_step(p, cfg, 132); }), a);
    return a;
  };
  EXPECT_EQ(rejected([](auto&) {}), "(accepted)");
  EXPECT_EQ(rejected([](auto& p) { p.topk = 0; }), "topk");
  EXPECT_EQ(rejected([](auto& p) { p.topk = 4096; }), "topk");
  EXPECT_EQ(rejected([](auto& p) { p.mla.B = 3; }), "mla.B");
  EXPECT_EQ(rejected([](auto& p) { p.mla.S_q = 1; }), "mla.S_q");
  EXPECT_EQ(rejected([](auto& p) { p.indexer.num_heads = 128; }), "indexer.num_heads");
  EXPECT_EQ(rejected([](auto& p) { p.indexer.weights = nullptr; }), "indexer.weights");
  EXPECT_EQ(rejected([](auto& p) { p.mla.block_table = p.mla.block_table.first(31); }).rfind("mla.", 0), 0u);
  EXPECT_EQ(rejected([](auto& p) { p.mla.cache.geo.layout = MlaLayout::BF16; }).rfind("mla.", 0), 0u);
  EXPECT_EQ(rejected([](auto& p) { p.mla.conventions = MlaConventions::xkernels(); }), "mla.conventions");
}

TEST(DsaDecodeStepValidation, PlanLaysOutTheWorkspace) {
  SparseMlaConfig cfg = builtin_config(ConfigTable::default_table);
  cfg.num_splits = 4;
  const DsaDecodeStepPlan plan = plan_dsa_decode_step(fake_params(), cfg, 132);
  EXPECT_EQ(plan.rows, 4);
  EXPECT_EQ(plan.max_ctx, 1001);
  EXPECT_EQ(plan.logits_row_stride, 1004);  // 16-byte rows
  EXPECT_EQ(plan.logits_offset, 0);
  EXPECT_EQ(plan.logits_bytes, 4 * 1004 * 4);
  EXPECT_EQ(plan.indices_offset, (4 * 1004 * 4 + 255) / 256 * 256);
  EXPECT_EQ(plan.indices_bytes, 4 * 2048 * 4);
  EXPECT_EQ(plan.status_offset, plan.indices_offset + 4 * 2048 * 4);
  EXPECT_EQ(plan.mla_offset, plan.status_offset + 256);
  EXPECT_EQ(plan.mla.num_splits, 4);
  EXPECT_EQ(plan.mla.algo, MlaAlgo::fused);
  EXPECT_GE(plan.mla.workspace_bytes, 4 * 4 * 128 * (512 + 2) * 4);  // splits × rows × heads partials
  EXPECT_EQ(plan.workspace_bytes, (plan.mla_offset + plan.mla.workspace_bytes + 255) / 256 * 256);
  for (const std::int64_t off : {plan.logits_offset, plan.indices_offset, plan.status_offset, plan.mla_offset})
    EXPECT_EQ(off % 256, 0);
  const DsaDecodeStepBuffers b = dsa_decode_step_buffers(plan, {fake_device_ptr<void>(), plan.workspace_bytes});
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.indices) - reinterpret_cast<std::uintptr_t>(b.logits),
            static_cast<std::uintptr_t>(plan.indices_offset));
  EXPECT_EQ(b.mla.bytes, plan.workspace_bytes - plan.mla_offset);
}

}  // namespace
