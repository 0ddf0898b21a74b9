// GPU sparse MLA decode (gpu/sparse_mla.cu) against the CPU gold (SPEC §4): a property suite over
// random problems — every layout and fp8 format, both index modes, extra caches of their own
// layout and page size, topk_length, sinks (±inf too), all-invalid rows, int32 edge indices,
// NaN-poisoned unreferenced tokens, sentinel-filled outputs, exactly sized device buffers — each
// run as fused and staged, single pass and split, judged per element (sparse_mla_gpu_case.hpp);
// fused ≡ staged bit for bit (same operands, tiles and splits); graph replay ≡ eager; reruns
// bit-identical; argument validation without a device.
#include "sparse_mla_gpu_case.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>

#include "dsa/error.hpp"

namespace {

using namespace dsa;
using namespace dsa::gpu;
using namespace dsa::gpu::testing;

// A decode problem on the host and on the device.
struct DecodeCase {
  std::string label;
  std::int64_t B = 1, S_q = 1;
  std::int32_t H = 1;
  IndexMode mode = IndexMode::physical;
  ReaderModel reader;
  CaseSource primary, extra;
  std::vector<std::uint16_t> q;
  std::vector<float> sink;
  float sm_scale = 0.0f;
  DeviceVec<std::uint16_t> d_q;
  DeviceVec<float> d_sink;

  std::int64_t rows() const { return B * S_q; }

  SparseMlaDecodeParams params(bool device) const {
    SparseMlaDecodeParams p;
    p.B = B;
    p.S_q = S_q;
    p.H = H;
    p.index_mode = mode;
    p.reader = reader;
    p.sm_scale = sm_scale;
    auto sel = [&](const CaseSource& s, MlaCacheView& cache, std::span<const std::int32_t>& bt, std::int64_t& mb,
                   std::span<const std::int32_t>& ind, std::int32_t& topk, std::span<const std::int32_t>& len) {
      cache = device ? s.device_view() : s.host_view();
      if (mode == IndexMode::logical) bt = device ? dspan(s.d_block_table) : std::span<const std::int32_t>(s.block_table);
      mb = s.max_blocks;
      ind = device ? dspan(s.d_indices) : std::span<const std::int32_t>(s.indices);
      topk = s.topk;
      len = device ? dspan(s.d_topk_length) : std::span<const std::int32_t>(s.topk_length);
    };
    sel(primary, p.cache, p.block_table, p.max_blocks, p.indices, p.topk, p.topk_length);
    if (extra.topk > 0)
      sel(extra, p.extra_cache, p.extra_block_table, p.extra_max_blocks, p.extra_indices, p.extra_topk,
          p.extra_topk_length);
    p.q = device ? dspan(d_q) : std::span<const std::uint16_t>(q);
    p.attn_sink = device ? dspan(d_sink) : std::span<const float>(sink);
    return p;
  }
  bool fused_ok() const { return is_fp8(primary.geo.layout) && (extra.topk == 0 || is_fp8(extra.geo.layout)); }
};

const CacheKind kKinds576[] = {{MlaLayout::V32, 576}, {MlaLayout::BF16, 576}};
const CacheKind kKinds512[] = {{MlaLayout::MODEL1, 512}, {MlaLayout::MODEL1_SPLIT, 512}, {MlaLayout::BF16, 512}};

CacheKind pick_kind(bool d576, Rng& rng) {
  // BF16 (staged only) one time in eight.
  const bool bf16 = uniform(rng, 0, 7) == 0;
  if (d576) return kKinds576[bf16 ? 1 : 0];
  return bf16 ? kKinds512[2] : kKinds512[uniform(rng, 0, 1)];
}

std::int32_t pick_topk(Rng& rng, std::int32_t hi) {
  const std::int32_t special[] = {0, 1, 31, 32, 33, 63, 64, 65, 127, 128};
  const std::int32_t v = uniform(rng, 0, 2) == 0 ? special[uniform(rng, 0, 9)] : static_cast<std::int32_t>(uniform(rng, 1, hi));
  return std::min(v, hi);
}

std::int32_t pick_heads(Rng& rng) {
  const int u = static_cast<int>(uniform(rng, 0, 99));
  if (u < 70) return static_cast<std::int32_t>(uniform(rng, 1, 8));
  if (u < 92) return static_cast<std::int32_t>(uniform(rng, 9, 24));
  if (u < 98) return uniform(rng, 0, 1) ? 64 : 65;
  return 128;
}

DecodeCase make_case(std::uint64_t seed) {
  Rng rng(seed);
  DecodeCase c;
  const bool d576 = uniform(rng, 0, 1) == 0;
  c.B = uniform(rng, 1, 3);
  c.S_q = uniform(rng, 1, 2);
  c.H = pick_heads(rng);
  c.mode = uniform(rng, 0, 1) ? IndexMode::logical : IndexMode::physical;
  const ReaderModel readers[] = {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(), ReaderModel::flashmla_sm100()};
  c.reader = readers[uniform(rng, 0, 2)];
  const int invalid_pct = static_cast<int>(uniform(rng, 0, 3) * 10);
  const CacheKind pk = pick_kind(d576, rng);
  const Fp8Format f1 = uniform(rng, 0, 1) ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn;
  c.primary = make_case_source(pk, f1, c.mode, c.B, c.rows(), pick_topk(rng, 150), uniform(rng, 0, 1) == 1, invalid_pct, rng);
  const bool with_extra = uniform(rng, 0, 1) == 1;
  if (with_extra) {
    const CacheKind ek = pick_kind(d576, rng);
    const Fp8Format f2 = uniform(rng, 0, 1) ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn;
    c.extra = make_case_source(ek, f2, c.mode, c.B, c.rows(), static_cast<std::int32_t>(uniform(rng, 1, 70)),
                               uniform(rng, 0, 1) == 1, invalid_pct, rng);
  }
  mark_referenced(c.primary, c.mode, c.rows(), c.S_q);
  fill_tokens(c.primary, rng);
  if (with_extra) {
    mark_referenced(c.extra, c.mode, c.rows(), c.S_q);
    fill_tokens(c.extra, rng);
  }
  c.q = random_q(c.rows() * c.H * pk.dim, rng);
  if (uniform(rng, 0, 2) == 0) c.sink = random_sink(c.H, rng);
  if (uniform(rng, 0, 3) == 0) c.sm_scale = static_cast<float>(uniform(rng, 5, 400)) / 1000.0f;  // sharper softmax
  c.label = "seed " + std::to_string(seed) + ": " + name(pk) + (with_extra ? "+" + name({c.extra.geo.layout, c.extra.geo.dim_qk()}) : "") +
            " " + to_string(c.mode) + " B=" + std::to_string(c.B) + " S_q=" + std::to_string(c.S_q) + " H=" +
            std::to_string(c.H) + " topk=" + std::to_string(c.primary.topk) + "+" + std::to_string(c.extra.topk);
  return c;
}

void upload(DecodeCase& c) {
  c.primary.upload();
  if (c.extra.topk > 0) c.extra.upload();
  c.d_q = DeviceVec<std::uint16_t>(c.q);
  c.d_sink = DeviceVec<float>(c.sink);
}

SparseMlaConfig config_of(int block_n, int splits) {
  SparseMlaConfig cfg = builtin_config(ConfigTable::default_table);
  cfg.block_n = block_n;
  cfg.num_splits = splits;
  return cfg;
}

// One call: sentinel outputs, a NaN-filled workspace of exactly the plan's size, then read back.
GotOutputs run(const DecodeCase& c, MlaAlgo algo, const SparseMlaConfig& cfg, SparseMlaPlan* plan_out = nullptr) {
  const SparseMlaDecodeParams p = c.params(true);
  const SparseMlaPlan plan = plan_sparse_mla_decode(p, algo, cfg, device_sm_count());
  if (plan_out) *plan_out = plan;
  DeviceOutputs o(c.rows(), c.H);
  o.poison();
  DeviceWorkspaceBuffer ws(plan.workspace_bytes);
  sparse_mla_decode(p, o.view(), plan, ws.view(), nullptr);
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  return o.download();
}

class SparseMlaDecodeGpu : public GpuTest {};

TEST_F(SparseMlaDecodeGpu, PropertySuiteAgainstGold) {
  const int cases = case_count(2800);
  std::map<std::string, int> judged;     // variant → cases passed
  std::map<std::string, double> worst;   // variant → worst error / budget
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < cases; ++i) {
    DecodeCase c = make_case(0x5EED0000ull + static_cast<std::uint64_t>(i));
    upload(c);
    Rng rng(static_cast<std::uint64_t>(i) * 7919u + 1);
    const int bn = uniform(rng, 0, 1) ? 64 : 32;
    // Split count: an explicit power of two, or the heuristic's (0) one case in four.
    int splits = 1 << uniform(rng, 1, 5);
    if (uniform(rng, 0, 3) == 0) splits = 0;
    const int S = plan_sparse_mla_decode(c.params(true), MlaAlgo::staged, config_of(bn, splits), device_sm_count()).num_splits;
    const SparseMlaDecodeParams ph = c.params(false);
    const SparseMlaBudget budget_single = sparse_mla_decode_budget(ph, gpu_precision(), {1, bn});
    const SparseMlaBudget budget_split = sparse_mla_decode_budget(ph, gpu_precision(), {S, bn});
    GotOutputs single[2], split[2];
    for (const MlaAlgo algo : {MlaAlgo::fused, MlaAlgo::staged}) {
      if (algo == MlaAlgo::fused && !c.fused_ok()) continue;
      const int a = algo == MlaAlgo::fused ? 0 : 1;
      const std::string name = to_string(algo);
      single[a] = run(c, algo, config_of(bn, 1));
      Verdict v = check_against_budget(single[a], budget_single, true);
      ASSERT_EQ(v.failure, "") << name << " single pass, block_n " << bn << ", " << c.label;
      ++judged[name + " single"];
      worst[name + " single"] = std::max(worst[name + " single"], v.worst_ratio);
      SparseMlaPlan plan;
      split[a] = run(c, algo, config_of(bn, splits), &plan);
      ASSERT_EQ(plan.num_splits, S);
      v = check_against_budget(split[a], budget_split, true);
      ASSERT_EQ(v.failure, "") << name << " " << S << " splits, block_n " << bn << ", " << c.label;
      ++judged[name + " split"];
      worst[name + " split"] = std::max(worst[name + " split"], v.worst_ratio);
    }
    if (c.fused_ok()) {
      // Same operands (the gather writes what the fused loader dequantizes), same tiles, same
      // splits: the same arithmetic.
      ASSERT_EQ(check_identical(single[0], single[1]), "") << "fused vs staged, single pass, " << c.label;
      ASSERT_EQ(check_identical(split[0], split[1]), "") << "fused vs staged, " << S << " splits, " << c.label;
      ++judged[c.extra.topk > 0 ? "fused == staged (primary + extra)" : "fused == staged (primary only)"];
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& [variant, n] : judged)
    std::printf("  %-36s %5d cases passed, worst error/budget %.3f\n", variant.c_str(), n, worst[variant]);
  std::printf("  %d cases in %.1f s\n", cases, secs);
  if (cases >= 2800) {
    for (const char* v : {"fused single", "fused split", "staged single", "staged split"})
      EXPECT_GE(judged[v], 2000) << v;
  }
}

// A full-size row: H = 128, topk = 2048 (+ extra), both paths against gold; the staged path's
// bf16 loader walks several descriptor chunks (slots > its capacity).
TEST_F(SparseMlaDecodeGpu, FullSizeRows) {
  for (const bool v32 : {true, false}) {
    Rng rng(v32 ? 11 : 12);
    DecodeCase c;
    c.B = 2;
    c.S_q = 1;
    c.H = 128;
    c.mode = IndexMode::logical;
    const CacheKind k = v32 ? CacheKind{MlaLayout::V32, 576} : CacheKind{MlaLayout::MODEL1, 512};
    c.primary = make_case_source(k, Fp8Format::e4m3fn, c.mode, c.B, c.rows(), 2048, true, 2, rng, 64, 40);
    c.extra = make_case_source(v32 ? k : CacheKind{MlaLayout::MODEL1_SPLIT, 512}, Fp8Format::e4m3fn, c.mode, c.B,
                               c.rows(), 128, false, 2, rng, 16, 12);
    mark_referenced(c.primary, c.mode, c.rows(), c.S_q);
    mark_referenced(c.extra, c.mode, c.rows(), c.S_q);
    fill_tokens(c.primary, rng);
    fill_tokens(c.extra, rng);
    c.q = random_q(c.rows() * c.H * k.dim, rng);
    c.sink = random_sink(c.H, rng);
    c.label = v32 ? "V32 + V32" : "MODEL1 + MODEL1_SPLIT";
    upload(c);
    for (const MlaAlgo algo : {MlaAlgo::fused, MlaAlgo::staged})
      for (const int splits : {1, 0}) {
        SparseMlaPlan plan;
        const GotOutputs got = run(c, algo, config_of(64, splits), &plan);
        const Verdict v = check_against_budget(got, sparse_mla_decode_budget(c.params(false), gpu_precision(), {plan.num_splits, 64}), true);
        EXPECT_EQ(v.failure, "") << to_string(algo) << " " << plan.num_splits << " splits, " << c.label;
        std::printf("  %s %s, %d splits: worst error/budget %.3f\n", c.label.c_str(), to_string(algo), plan.num_splits, v.worst_ratio);
      }
  }
}

// The configs of both built-in tables and the heuristic's split counts, on one mid-size case.
TEST_F(SparseMlaDecodeGpu, BuiltInTablesAndHeuristicSplits) {
  DecodeCase c = make_case(77);
  while (!c.fused_ok() || c.primary.topk < 64) c = make_case(c.primary.topk * 31 + 1001);
  upload(c);
  for (const ConfigTable t : {ConfigTable::decode_table, ConfigTable::default_table}) {
    SparseMlaPlan plan;
    const GotOutputs got = run(c, MlaAlgo::fused, builtin_config(t), &plan);
    const Verdict v = check_against_budget(
        got, sparse_mla_decode_budget(c.params(false), gpu_precision(), {plan.num_splits, plan.config.block_n}), true);
    EXPECT_EQ(v.failure, "") << to_string(t) << ", " << c.label;
  }
}

// Graph capture of fixed decode shapes: the launch sequence records without allocation or host
// synchronisation (the workspace is the caller's), and replay is bit-identical to eager; twenty
// eager reruns are bit-identical too.
TEST_F(SparseMlaDecodeGpu, GraphReplayAndRerunsAreBitIdentical) {
  Rng rng(99);
  DecodeCase c;
  c.B = 4;
  c.S_q = 2;
  c.H = 128;
  c.mode = IndexMode::logical;
  c.primary = make_case_source({MlaLayout::V32, 576}, Fp8Format::e4m3fn, c.mode, c.B, c.rows(), 700, true, 5, rng, 64, 24);
  c.extra = make_case_source({MlaLayout::V32, 576}, Fp8Format::e4m3fnuz, c.mode, c.B, c.rows(), 64, true, 5, rng, 16, 8);
  mark_referenced(c.primary, c.mode, c.rows(), c.S_q);
  mark_referenced(c.extra, c.mode, c.rows(), c.S_q);
  fill_tokens(c.primary, rng);
  fill_tokens(c.extra, rng);
  c.q = random_q(c.rows() * c.H * 576, rng);
  c.sink = random_sink(c.H, rng);
  upload(c);
  sparse_mla_warmup(nullptr);
  cudaStream_t stream;
  DSA_GPU_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (const MlaAlgo algo : {MlaAlgo::fused, MlaAlgo::staged})
    for (const int splits : {1, 8}) {
      const SparseMlaDecodeParams p = c.params(true);
      const SparseMlaPlan plan = plan_sparse_mla_decode(p, algo, config_of(64, splits), device_sm_count());
      DeviceWorkspaceBuffer ws(plan.workspace_bytes);
      DeviceOutputs eager(c.rows(), c.H), graph(c.rows(), c.H);
      eager.poison();
      sparse_mla_decode(p, eager.view(), plan, ws.view(), stream);
      DSA_GPU_CHECK(cudaStreamSynchronize(stream));
      const GotOutputs want = eager.download();
      for (int rerun = 0; rerun < 20; ++rerun) {
        eager.poison();
        sparse_mla_decode(p, eager.view(), plan, ws.view(), stream);
        DSA_GPU_CHECK(cudaStreamSynchronize(stream));
        ASSERT_EQ(check_identical(eager.download(), want), "") << "rerun " << rerun << ", " << to_string(algo);
      }
      graph.poison();
      cudaGraph_t g;
      cudaGraphExec_t exec;
      DSA_GPU_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      sparse_mla_decode(p, graph.view(), plan, ws.view(), stream);
      DSA_GPU_CHECK(cudaStreamEndCapture(stream, &g));
      DSA_GPU_CHECK(cudaGraphInstantiateWithFlags(&exec, g, 0));
      for (int replay = 0; replay < 3; ++replay) {
        graph.poison();
        DSA_GPU_CHECK(cudaGraphLaunch(exec, stream));
        DSA_GPU_CHECK(cudaStreamSynchronize(stream));
        ASSERT_EQ(check_identical(graph.download(), want), "") << "replay " << replay << ", " << to_string(algo)
                                                               << ", " << splits << " splits";
      }
      DSA_GPU_CHECK(cudaGraphExecDestroy(exec));
      DSA_GPU_CHECK(cudaGraphDestroy(g));
    }
  DSA_GPU_CHECK(cudaStreamDestroy(stream));
}

// port.hpp's hardware e4m3fn decoder (used by the fused loader) against the reference decoder on
// every pair of codes: the same fp32 value, NaN for NaN.
__global__ void decode_all_pairs(float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < 65536) e4m3fn_x2_to_float2(static_cast<std::uint16_t>(i), out[2 * i], out[2 * i + 1]);
}

TEST_F(SparseMlaDecodeGpu, HardwareE4m3fnDecodeIsTheReference) {
  DeviceVec<float> d(2 * 65536);
  decode_all_pairs<<<256, 256>>>(d.get());
  DSA_GPU_CHECK(cudaGetLastError());
  const std::vector<float> got = d.download();
  for (int i = 0; i < 65536; ++i)
    for (int h = 0; h < 2; ++h) {
      const float want = fp8_to_f32(static_cast<std::uint8_t>(h ? i >> 8 : i & 0xFF), Fp8Format::e4m3fn);
      const float g = got[2 * i + h];
      if (std::isnan(want)) ASSERT_TRUE(std::isnan(g)) << "pair " << i;
      else ASSERT_EQ(f32_bits(g), f32_bits(want)) << "pair " << i << " half " << h;
    }
}

// ---- argument validation (no device needed: nothing is launched) -----------------------------
SparseMlaDecodeParams fake_params(MlaLayout layout) {
  SparseMlaDecodeParams p;
  p.B = 1;
  p.S_q = 1;
  p.H = 16;
  const int dim = mla_dim_qk(layout, 576);
  p.q = {fake_device_ptr<std::uint16_t>(), static_cast<std::size_t>(16 * dim)};
  p.cache.geo = MlaCacheGeometry::packed(layout, Fp8Format::e4m3fn, 2, 64, 576);
  p.cache.values = {fake_device_ptr<std::uint8_t>(), static_cast<std::size_t>(p.cache.geo.values_bytes())};
  p.cache.scales = {fake_device_ptr<std::uint8_t>(), static_cast<std::size_t>(p.cache.geo.scales_bytes())};
  p.indices = {fake_device_ptr<std::int32_t>(), 8};
  p.topk = 8;
  return p;
}

TEST(SparseMlaDecodeValidation, PreconditionsAreNamed) {
  const SparseMlaConfig cfg = builtin_config(ConfigTable::decode_table);
  EXPECT_EQ(rejected_argument([&] { plan_sparse_mla_decode(fake_params(MlaLayout::BF16), MlaAlgo::fused, cfg, 132); }),
            "cache.layout");
  EXPECT_NO_THROW(plan_sparse_mla_decode(fake_params(MlaLayout::BF16), MlaAlgo::staged, cfg, 132));
  auto p = fake_params(MlaLayout::V32);
  p.conventions = MlaConventions::xkernels();
  EXPECT_EQ(rejected_argument([&] { plan_sparse_mla_decode(p, MlaAlgo::fused, cfg, 132); }), "conventions");
  p = fake_params(MlaLayout::V32);
  p.reader = ReaderModel::exact_fp32();
  EXPECT_EQ(rejected_argument([&] { plan_sparse_mla_decode(p, MlaAlgo::fused, cfg, 132); }), "reader.operand");
  p = fake_params(MlaLayout::V32);
  p.q = {p.q.data() + 1, p.q.size()};
  EXPECT_EQ(rejected_argument([&] { plan_sparse_mla_decode(p, MlaAlgo::fused, cfg, 132); }), "q");
  p = fake_params(MlaLayout::V32);
  p.indices = {p.indices.data(), 7};
  EXPECT_EQ(rejected_argument([&] { plan_sparse_mla_decode(p, MlaAlgo::fused, cfg, 132); }), "indices");
  SparseMlaConfig bad = cfg;
  bad.block_n = 128;
  EXPECT_EQ(rejected_argument([&] { plan_sparse_mla_decode(fake_params(MlaLayout::V32), MlaAlgo::fused, bad, 132); }),
            "config");
}

TEST(SparseMlaDecodeValidation, PlanAndWorkspaceAreChecked) {
  const auto p = fake_params(MlaLayout::V32);
  SparseMlaConfig cfg = builtin_config(ConfigTable::decode_table);
  cfg.num_splits = 4;
  const SparseMlaPlan plan = plan_sparse_mla_decode(p, MlaAlgo::fused, cfg, 132);
  EXPECT_EQ(plan.num_splits, 4);
  EXPECT_EQ(plan.launches, 2);
  EXPECT_EQ(plan.staging_bytes, 0);
  EXPECT_GE(plan.workspace_bytes, 4 * 16 * (512 + 2) * 4);
  SparseMlaOutputs o{{fake_device_ptr<std::uint16_t>(), 16 * 512}, {}, {}};
  EXPECT_EQ(rejected_argument([&] { sparse_mla_decode(p, o, plan, {fake_device_ptr<void>(), plan.workspace_bytes - 1}, nullptr); }),
            "workspace");
  SparseMlaOutputs short_out{{fake_device_ptr<std::uint16_t>(), 16 * 512 - 1}, {}, {}};
  EXPECT_EQ(rejected_argument([&] { sparse_mla_decode(p, short_out, plan, {fake_device_ptr<void>(), plan.workspace_bytes}, nullptr); }),
            "out");
  const SparseMlaPlan staged = plan_sparse_mla_decode(p, MlaAlgo::staged, cfg, 132);
  EXPECT_EQ(staged.staging_bytes, 8 * 576 * 2 + 8 * 4);
  EXPECT_EQ(staged.launches, 3);
  EXPECT_EQ(rejected_argument([&] { sparse_mla_decode(p, o, staged, {fake_device_ptr<void>(), plan.workspace_bytes}, nullptr); }),
            "workspace");
  // The heuristic: 1 row × 1 head group on 132 SMs, 8 slots: too few slots to split.
  cfg.num_splits = 0;
  EXPECT_EQ(plan_sparse_mla_decode(p, MlaAlgo::fused, cfg, 132).num_splits, 1);
}

}  // namespace
