// GPU sparse MLA prefill and sparse_mla_attention (gpu/sparse_mla.cu) against the CPU gold
// (SPEC §5): random problems over bf16 rows (the staged path's step 2 and dense prefill) and over
// paged fp8 layouts, with topk_length per row, sinks, invalid and int32 edge indices, NaN-poisoned
// unreferenced rows and sentinel-filled outputs; single pass and split; max_logits and lse; a
// descriptor-chunked row longer than the fp8 loader's capacity.
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

struct PrefillCase {
  std::string label;
  std::int64_t S_q = 1;
  std::int32_t H = 1;
  ReaderModel reader;
  CaseSource kv;
  std::vector<std::uint16_t> q;
  std::vector<float> sink;
  float sm_scale = 0.0f;
  DeviceVec<std::uint16_t> d_q;
  DeviceVec<float> d_sink;

  SparseMlaPrefillParams params(bool device) const {
    SparseMlaPrefillParams p;
    p.S_q = S_q;
    p.H = H;
    p.kv = device ? kv.device_view() : kv.host_view();
    p.indices = device ? dspan(kv.d_indices) : std::span<const std::int32_t>(kv.indices);
    p.topk = kv.topk;
    p.topk_length = device ? dspan(kv.d_topk_length) : std::span<const std::int32_t>(kv.topk_length);
    p.q = device ? dspan(d_q) : std::span<const std::uint16_t>(q);
    p.attn_sink = device ? dspan(d_sink) : std::span<const float>(sink);
    p.sm_scale = sm_scale;
    p.reader = reader;
    return p;
  }
};

PrefillCase make_case(std::uint64_t seed) {
  Rng rng(seed);
  PrefillCase c;
  const CacheKind kinds[] = {{MlaLayout::BF16, 576}, {MlaLayout::BF16, 512}, {MlaLayout::V32, 576},
                             {MlaLayout::MODEL1, 512}, {MlaLayout::MODEL1_SPLIT, 512}};
  const CacheKind k = kinds[uniform(rng, 0, 4)];
  c.S_q = uniform(rng, 1, 6);
  const int u = static_cast<int>(uniform(rng, 0, 99));
  c.H = u < 75 ? static_cast<std::int32_t>(uniform(rng, 1, 12)) : u < 95 ? static_cast<std::int32_t>(uniform(rng, 13, 40)) : 64;
  const ReaderModel readers[] = {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(), ReaderModel::flashmla_sm100()};
  c.reader = readers[uniform(rng, 0, 2)];
  const std::int32_t topk = uniform(rng, 0, 9) == 0 ? static_cast<std::int32_t>(uniform(rng, 0, 2))
                                                    : static_cast<std::int32_t>(uniform(rng, 1, 300));
  const Fp8Format fmt = uniform(rng, 0, 1) ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn;
  // One block half the time: a dense [S_kv][D] tensor.
  c.kv = make_case_source(k, fmt, IndexMode::physical, c.S_q, c.S_q, topk, uniform(rng, 0, 1) == 1,
                          static_cast<int>(uniform(rng, 0, 3) * 10), rng, 0, uniform(rng, 0, 1) ? 1 : 0);
  // Prefill lengths are per row: the generator made one per "batch" = row (batch = S_q).
  mark_referenced(c.kv, IndexMode::physical, c.S_q, 1);
  fill_tokens(c.kv, rng);
  c.q = random_q(c.S_q * c.H * k.dim, rng);
  if (uniform(rng, 0, 2) == 0) c.sink = random_sink(c.H, rng);
  if (uniform(rng, 0, 3) == 0) c.sm_scale = static_cast<float>(uniform(rng, 5, 400)) / 1000.0f;
  c.label = "seed " + std::to_string(seed) + ": " + name(k) + " S_q=" + std::to_string(c.S_q) + " H=" +
            std::to_string(c.H) + " topk=" + std::to_string(topk) + " blocks=" + std::to_string(c.kv.geo.num_blocks);
  return c;
}

void upload(PrefillCase& c) {
  c.kv.upload();
  c.d_q = DeviceVec<std::uint16_t>(c.q);
  c.d_sink = DeviceVec<float>(c.sink);
}

GotOutputs run(const PrefillCase& c, int block_n, int splits, SparseMlaPlan* plan_out = nullptr) {
  const SparseMlaPrefillParams p = c.params(true);
  SparseMlaConfig cfg = builtin_config(ConfigTable::default_table);
  cfg.block_n = block_n;
  cfg.num_splits = splits;
  const SparseMlaPlan plan = plan_sparse_mla_prefill(p, cfg, device_sm_count());
  if (plan_out) *plan_out = plan;
  DeviceOutputs o(c.S_q, c.H);
  o.poison();
  DeviceWorkspaceBuffer ws(plan.workspace_bytes);
  if (c.kv.geo.layout == MlaLayout::BF16) sparse_mla_attention(p, o.view(), plan, ws.view(), nullptr);
  else sparse_mla_prefill(p, o.view(), plan, ws.view(), nullptr);
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  return o.download();
}

class SparseMlaPrefillGpu : public GpuTest {};

TEST_F(SparseMlaPrefillGpu, PropertySuiteAgainstGold) {
  const int cases = case_count(2000);
  std::map<std::string, int> judged;
  std::map<std::string, double> worst;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < cases; ++i) {
    PrefillCase c = make_case(0xF111000ull + static_cast<std::uint64_t>(i));
    upload(c);
    Rng rng(static_cast<std::uint64_t>(i) * 104729u + 3);
    const int bn = uniform(rng, 0, 1) ? 64 : 32;
    const std::string path = c.kv.geo.layout == MlaLayout::BF16 ? "attention (bf16 rows)" : "prefill (fp8 paged)";
    for (const int splits : {1, static_cast<int>(1 << uniform(rng, 1, 4))}) {
      SparseMlaPlan plan;
      const GotOutputs got = run(c, bn, splits, &plan);
      const Verdict v = check_against_budget(
          got, sparse_mla_prefill_budget(c.params(false), gpu_precision(), {plan.num_splits, bn}), true);
      ASSERT_EQ(v.failure, "") << path << ", " << plan.num_splits << " splits, block_n " << bn << ", " << c.label;
      const std::string variant = path + (splits == 1 ? " single" : " split");
      ++judged[variant];
      worst[variant] = std::max(worst[variant], v.worst_ratio);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& [variant, n] : judged)
    std::printf("  %-36s %5d cases passed, worst error/budget %.3f\n", variant.c_str(), n, worst[variant]);
  std::printf("  %d cases in %.1f s\n", cases, secs);
}

// A row longer than the fp8 loader's descriptor capacity (4032 slots): several chunks per CTA.
TEST_F(SparseMlaPrefillGpu, RowsLongerThanOneDescriptorChunk) {
  for (const MlaLayout l : {MlaLayout::V32, MlaLayout::BF16}) {
    Rng rng(5);
    PrefillCase c;
    c.S_q = 2;
    c.H = 20;
    const CacheKind k{l, 576};
    c.kv = make_case_source(k, Fp8Format::e4m3fn, IndexMode::physical, c.S_q, c.S_q, 9000, true, 3, rng, 64, 100);
    mark_referenced(c.kv, IndexMode::physical, c.S_q, 1);
    fill_tokens(c.kv, rng);
    c.q = random_q(c.S_q * c.H * 576, rng);
    c.label = name(k);
    upload(c);
    for (const int splits : {1, 2}) {
      SparseMlaPlan plan;
      const GotOutputs got = run(c, 64, splits, &plan);
      const Verdict v = check_against_budget(
          got, sparse_mla_prefill_budget(c.params(false), gpu_precision(), {plan.num_splits, 64}), true);
      EXPECT_EQ(v.failure, "") << plan.num_splits << " splits, " << c.label;
    }
  }
}

TEST(SparseMlaPrefillValidation, AttentionTakesBf16Rows) {
  SparseMlaPrefillParams p;
  p.S_q = 1;
  p.H = 4;
  p.q = {fake_device_ptr<std::uint16_t>(), 4 * 576};
  p.kv.geo = MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 1, 64);
  p.kv.values = {fake_device_ptr<std::uint8_t>(), static_cast<std::size_t>(p.kv.geo.values_bytes())};
  p.indices = {fake_device_ptr<std::int32_t>(), 4};
  p.topk = 4;
  const SparseMlaPlan plan = plan_sparse_mla_prefill(p, builtin_config(ConfigTable::decode_table), 132);
  SparseMlaOutputs o{{fake_device_ptr<std::uint16_t>(), 4 * 512}, {}, {}};
  try {
    sparse_mla_attention(p, o, plan, {}, nullptr);
    ADD_FAILURE() << "accepted a V32 kv";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.argument(), "kv.layout");
  }
}

}  // namespace
