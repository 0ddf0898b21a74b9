// Sparse MLA on the GPU: launches (fused, staged, prefill), the split-KV combine kernel, warm-up
// and the device query. Validation and planning are in sparse_mla.cpp; the attention kernel's
// instantiations in gpu/instances/.
#include "sparse_mla_attention_kernel.cuh"  // first: the vendor runtime

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "dsa/error.hpp"
#include "dsa/gpu/sparse_mla.hpp"
#include "dsa/gpu/sparse_mla_gather.hpp"
#include "sparse_mla_plan.hpp"
#include "sparse_mla_workspace.hpp"

namespace dsa::gpu {

namespace detail {

namespace {
std::atomic<int> g_ablation{0};  // benchmark ablation mask (AttnArgs::ablate); 0 in every real call

constexpr int kCombineThreads = kAttnDv / 4;  // 4 value dims per thread

struct CombineArgs {
  std::int64_t rows = 0;
  std::int32_t H = 0;
  int num_splits = 0;
  const float* part_o = nullptr;
  const float* part_lse = nullptr;
  const float* part_max = nullptr;
  const float* sink = nullptr;
  std::uint16_t* out = nullptr;
  float* lse = nullptr;
  float* max_logits = nullptr;
  const std::int32_t* skip_if = nullptr;  // as AttnArgs::skip_if
};

// SPEC §4 combine, one CTA per (row, head): m = max lse_i; all −inf ⇒ empty row; otherwise
// lse = m + ln Σ exp(lse_i − m), out = Σ exp(lse_i − lse)·o_i; then the sink, once; then bf16.
// Warp 0 reduces over the splits (fixed order: deterministic); every thread then sums 4 dims.
__global__ void __launch_bounds__(kCombineThreads) sparse_mla_combine_kernel(const CombineArgs a) {
  if (a.skip_if != nullptr && *a.skip_if != 0) return;
  __shared__ float weight[kMaxSplits];
  __shared__ float row_lse, row_max, row_f;
  const std::int64_t rh = blockIdx.x;
  const std::int64_t stride = a.rows * a.H;  // between splits
  const int tid = threadIdx.x;
  constexpr float kNegInf = -INFINITY;
  if (tid < kMmaWarp) {
    float l[2], mx[2];
    for (int k = 0; k < 2; ++k) {
      const int i = tid + kMmaWarp * k;
      l[k] = i < a.num_splits ? a.part_lse[i * stride + rh] : kNegInf;
      mx[k] = i < a.num_splits ? a.part_max[i * stride + rh] : kNegInf;
    }
    float m = fmaxf(l[0], l[1]), zmax = fmaxf(mx[0], mx[1]);
    for (int off = kMmaWarp / 2; off > 0; off >>= 1) {
      m = fmaxf(m, shfl_xor_group(m, off, kMmaWarp));
      zmax = fmaxf(zmax, shfl_xor_group(zmax, off, kMmaWarp));
    }
    const bool empty = m == kNegInf;
    float e[2];
    for (int k = 0; k < 2; ++k) e[k] = empty || l[k] == kNegInf ? 0.0f : expf(l[k] - m);
    float sum = e[0] + e[1];
    for (int off = kMmaWarp / 2; off > 0; off >>= 1) sum += shfl_xor_group(sum, off, kMmaWarp);
    const float lse = empty ? kNegInf : m + logf(sum);
    for (int k = 0; k < 2; ++k) {
      const int i = tid + kMmaWarp * k;
      if (i < a.num_splits) weight[i] = empty || l[k] == kNegInf ? 0.0f : expf(l[k] - lse);
    }
    if (tid == 0) {
      float f = 1.0f;
      if (a.sink != nullptr && !empty) f = 1.0f / (1.0f + expf(a.sink[rh % a.H] - lse));
      row_lse = empty ? INFINITY : lse;
      row_max = zmax;
      row_f = empty ? 0.0f : f;
    }
  }
  __syncthreads();
  const int d = tid * 4;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < a.num_splits; ++i) {
    const float w = weight[i];
    if (w == 0.0f) continue;  // an empty chunk (o_i = 0) or a weight below fp32
    const float4 v = *reinterpret_cast<const float4*>(a.part_o + (i * stride + rh) * kAttnDv + d);
    acc[0] += w * v.x;
    acc[1] += w * v.y;
    acc[2] += w * v.z;
    acc[3] += w * v.w;
  }
  const float f = row_f;
  std::uint16_t* dst = a.out + rh * kAttnDv + d;
  for (int k = 0; k < 4; ++k) dst[k] = float_to_bf16(f == 0.0f ? 0.0f : acc[k] * f);
  if (tid == 0) {
    if (a.lse != nullptr) a.lse[rh] = row_lse;
    if (a.max_logits != nullptr) a.max_logits[rh] = row_max;
  }
}

void launch_combine(const CombineArgs& c, Stream stream) {
  const std::int64_t blocks = c.rows * c.H;
  if (blocks == 0) return;
  sparse_mla_combine_kernel<<<static_cast<unsigned>(blocks), kCombineThreads, 0, stream>>>(c);
  DSA_GPU_CHECK_LAUNCH();
}

bool aligned(const void* p, int n) { return reinterpret_cast<std::uintptr_t>(p) % n == 0; }

AttnSource make_source(const MlaCacheView& cache, std::span<const std::int32_t> block_table, std::int64_t max_blocks,
                       std::span<const std::int32_t> indices, std::int32_t topk,
                       std::span<const std::int32_t> topk_length, IndexMode mode) {
  AttnSource s;
  s.geo = cache.geo;
  s.values = cache.values.data();
  s.scales = cache.scales.data();
  s.indices = indices.data();
  s.topk = topk;
  s.topk_length = topk_length.empty() ? nullptr : topk_length.data();
  s.block_table = mode == IndexMode::logical && !block_table.empty() ? block_table.data() : nullptr;
  s.max_blocks = mode == IndexMode::logical ? max_blocks : 0;
  s.aligned = aligned(s.values, 16) && s.geo.block_stride_bytes % 16 == 0;
  if (s.geo.layout == MlaLayout::MODEL1_SPLIT)
    s.aligned = s.aligned && aligned(s.scales, 8) && s.geo.scale_block_stride_bytes % 8 == 0;
  return s;
}

// Runs the attention kernel instantiated for (D, block_n, loader).
void run_attention(AttnArgs a, int dim_qk, int block_n, bool fp8, Stream stream) {
  a.ablate = g_ablation.load(std::memory_order_relaxed);
  const int key = (dim_qk == 576 ? 0 : 4) + (block_n == 64 ? 2 : 0) + (fp8 ? 1 : 0);
  switch (key) {
    case 0: return launch_attention<576, 32, Bf16Loader<576, 32>>(a, stream);
    case 1: return launch_attention<576, 32, Fp8Loader<576, 32>>(a, stream);
    case 2: return launch_attention<576, 64, Bf16Loader<576, 64>>(a, stream);
    case 3: return launch_attention<576, 64, Fp8Loader<576, 64>>(a, stream);
    case 4: return launch_attention<512, 32, Bf16Loader<512, 32>>(a, stream);
    case 5: return launch_attention<512, 32, Fp8Loader<512, 32>>(a, stream);
    case 6: return launch_attention<512, 64, Bf16Loader<512, 64>>(a, stream);
    case 7: return launch_attention<512, 64, Fp8Loader<512, 64>>(a, stream);
  }
}

// Final outputs or partials + combine, per the plan's split count.
void attention_and_combine(AttnArgs a, const SparseMlaOutputs& o, const SparseMlaPlan& plan,
                           const MlaWorkspaceLayout& w, DeviceWorkspace ws, int dim_qk, bool fp8, Stream stream) {
  a.num_splits = plan.num_splits;
  auto* base = static_cast<std::uint8_t*>(ws.ptr);
  if (plan.num_splits == 1) {
    a.out = o.out.data();
    a.lse = o.lse.empty() ? nullptr : o.lse.data();
    a.max_logits = o.max_logits.empty() ? nullptr : o.max_logits.data();
  } else {
    a.part_o = reinterpret_cast<float*>(base + w.part_o);
    a.part_lse = reinterpret_cast<float*>(base + w.part_lse);
    a.part_max = reinterpret_cast<float*>(base + w.part_max);
  }
  run_attention(a, dim_qk, plan.config.block_n, fp8, stream);
  if (plan.num_splits > 1) {
    CombineArgs c;
    c.rows = a.rows;
    c.H = a.H;
    c.num_splits = plan.num_splits;
    c.part_o = a.part_o;
    c.part_lse = a.part_lse;
    c.part_max = a.part_max;
    c.sink = a.sink;
    c.out = o.out.data();
    c.lse = o.lse.empty() ? nullptr : o.lse.data();
    c.max_logits = o.max_logits.empty() ? nullptr : o.max_logits.data();
    c.skip_if = a.skip_if;
    launch_combine(c, stream);
  }
}

MlaGatherSource gather_source(const MlaCacheView& cache, std::span<const std::int32_t> block_table,
                              std::int64_t max_blocks, std::span<const std::int32_t> indices, std::int32_t topk,
                              std::span<const std::int32_t> topk_length) {
  MlaGatherSource s;
  s.cache = cache.geo;
  s.values = cache.values.data();
  s.scales = cache.scales.data();
  s.indices = indices.data();
  s.topk = topk;
  s.topk_length = topk_length.empty() ? nullptr : topk_length.data();
  s.block_table = block_table.empty() ? nullptr : block_table.data();
  s.max_blocks = max_blocks;
  return s;
}

}  // namespace

void set_sparse_mla_ablation(int mask) { g_ablation.store(mask, std::memory_order_relaxed); }

}  // namespace detail

void sparse_mla_decode(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const SparseMlaPlan& plan,
                       DeviceWorkspace ws, Stream stream, const std::int32_t* skip_if_nonzero) {
  using namespace detail;
  check_decode(p, plan.algo);
  validate(p, o);
  check_launch_outputs(o);
  const MlaWorkspaceLayout w = decode_workspace(p, plan.algo, plan.num_splits);
  check_plan(plan, plan.algo, w, ws);
  const std::int64_t rows = p.B * p.S_q;
  if (rows == 0) return;
  const int dim_qk = p.cache.geo.dim_qk();
  AttnArgs a;
  a.skip_if = skip_if_nonzero;
  a.q = p.q.data();
  a.rows = rows;
  a.H = p.H;
  a.head_groups = (p.H + kAttnHeads - 1) / kAttnHeads;
  a.model = p.reader;
  a.sm_scale = effective_sm_scale(p.sm_scale, dim_qk);
  a.sink = p.attn_sink.empty() ? nullptr : p.attn_sink.data();
  auto* base = static_cast<std::uint8_t*>(ws.ptr);
  if (plan.algo == MlaAlgo::fused) {
    a.rows_per_batch = p.S_q;
    a.mode = p.index_mode;
    a.src[0] = make_source(p.cache, p.block_table, p.max_blocks, p.indices, p.topk, p.topk_length, p.index_mode);
    if (p.extra_topk > 0)
      a.src[1] = make_source(p.extra_cache, p.extra_block_table, p.extra_max_blocks, p.extra_indices, p.extra_topk,
                             p.extra_topk_length, p.index_mode);
    a.total_slots = static_cast<std::int64_t>(p.topk) + (p.extra_topk > 0 ? p.extra_topk : 0);
    attention_and_combine(a, o, plan, w, ws, dim_qk, /*fp8=*/true, stream);
    return;
  }
  // Staged: gather + dequantize into the workspace, then attention over its rows.
  const std::int32_t slots = p.topk + (p.extra_topk > 0 ? p.extra_topk : 0);
  auto* rows_bf16 = reinterpret_cast<std::uint16_t*>(base + w.staged_rows);
  auto* rebuilt = reinterpret_cast<std::int32_t*>(base + w.rebuilt);
  if (slots > 0) {
    SparseMlaGatherParams g;
    g.batch = p.B;
    g.seq_q = p.S_q;
    g.mode = p.index_mode;
    g.model = p.reader;
    g.primary = gather_source(p.cache, p.block_table, p.max_blocks, p.indices, p.topk, p.topk_length);
    if (p.extra_topk > 0)
      g.extra = gather_source(p.extra_cache, p.extra_block_table, p.extra_max_blocks, p.extra_indices, p.extra_topk,
                              p.extra_topk_length);
    g.workspace = rows_bf16;
    g.rebuilt_indices = rebuilt;
    sparse_mla_gather(g, stream);
  }
  a.rows_per_batch = 1;
  a.mode = IndexMode::physical;
  const std::int64_t n = rows * slots;
  a.src[0].geo = MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, n > 0 ? 1 : 0,
                                          static_cast<std::int32_t>(n > 0 ? n : 1), dim_qk);
  a.src[0].values = reinterpret_cast<const std::uint8_t*>(rows_bf16);
  a.src[0].indices = rebuilt;
  a.src[0].topk = slots;
  a.src[0].aligned = true;  // 256-byte aligned workspace, rows of 1152 or 1024 B
  a.total_slots = slots;
  attention_and_combine(a, o, plan, w, ws, dim_qk, /*fp8=*/false, stream);
}

void sparse_mla_prefill(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, const SparseMlaPlan& plan,
                        DeviceWorkspace ws, Stream stream) {
  using namespace detail;
  check_prefill(p);
  validate(p, o);
  check_launch_outputs(o);
  const MlaWorkspaceLayout w = prefill_workspace(p, plan.num_splits);
  check_plan(plan, MlaAlgo::fused, w, ws);
  if (p.S_q == 0) return;
  const int dim_qk = p.kv.geo.dim_qk();
  AttnArgs a;
  a.q = p.q.data();
  a.rows = p.S_q;
  a.rows_per_batch = 1;
  a.H = p.H;
  a.head_groups = (p.H + kAttnHeads - 1) / kAttnHeads;
  a.mode = IndexMode::physical;
  a.model = p.reader;
  a.src[0] = make_source(p.kv, {}, 0, p.indices, p.topk, p.topk_length, IndexMode::physical);
  a.total_slots = p.topk;
  a.sm_scale = effective_sm_scale(p.sm_scale, dim_qk);
  a.sink = p.attn_sink.empty() ? nullptr : p.attn_sink.data();
  attention_and_combine(a, o, plan, w, ws, dim_qk, /*fp8=*/p.kv.geo.layout != MlaLayout::BF16, stream);
}

int device_sm_count() {
  static std::mutex mu;
  static std::array<int, 64> cached{};
  int dev = 0;
  DSA_GPU_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  if (dev < 0 || dev >= static_cast<int>(cached.size())) {
    int n = 0;
    DSA_GPU_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    return n;
  }
  if (cached[dev] == 0) DSA_GPU_CHECK(cudaDeviceGetAttribute(&cached[dev], cudaDevAttrMultiProcessorCount, dev));
  return cached[dev];
}

void sparse_mla_warmup(Stream stream) {
  // A one-token problem per path: every attention instantiation (fp8 and bf16 loaders, D_qk 576
  // and 512, both tile widths), the combine, and the gather of every layout.
  const int sm = device_sm_count();
  constexpr std::int64_t kScratch = 1 << 16;
  std::uint8_t* buf = nullptr;
  DSA_GPU_CHECK(cudaMalloc(reinterpret_cast<void**>(&buf), kScratch));
  try {
    DSA_GPU_CHECK(cudaMemsetAsync(buf, 0, kScratch, stream));
    auto* q = reinterpret_cast<const std::uint16_t*>(buf);                 // 576 bf16 at 0
    auto* values = buf + 2048;                                              // one page ≤ 1152 B
    auto* scales = buf + 4096;                                              // 8 B
    auto* indices = reinterpret_cast<const std::int32_t*>(buf + 4352);      // one 0
    auto* out = reinterpret_cast<std::uint16_t*>(buf + 4608);               // 512 bf16
    auto* lse = reinterpret_cast<float*>(buf + 5888);
    void* ws = buf + 8192;                                                   // 256-aligned, 56 KiB
    const struct {
      MlaLayout layout;
      int dim;
    } kinds[] = {{MlaLayout::V32, 576}, {MlaLayout::MODEL1, 512}, {MlaLayout::MODEL1_SPLIT, 512},
                 {MlaLayout::BF16, 576}, {MlaLayout::BF16, 512}};
    for (const auto& k : kinds) {
      SparseMlaDecodeParams p;
      p.B = 1;
      p.S_q = 1;
      p.H = 1;
      p.q = {q, static_cast<std::size_t>(k.dim)};
      p.cache.geo = MlaCacheGeometry::packed(k.layout, Fp8Format::e4m3fn, 1, 1, k.dim);
      p.cache.values = {values, static_cast<std::size_t>(p.cache.geo.values_bytes())};
      p.cache.scales = {scales, static_cast<std::size_t>(p.cache.geo.scales_bytes())};
      p.indices = {indices, 1};
      p.topk = 1;
      SparseMlaOutputs o{{out, 512}, {lse, 1}, {}};
      for (const MlaAlgo algo : {MlaAlgo::fused, MlaAlgo::staged}) {
        if (algo == MlaAlgo::fused && k.layout == MlaLayout::BF16) continue;
        for (const int bn : {32, 64})
          for (const int splits : {1, 2}) {
            SparseMlaConfig c = builtin_config(ConfigTable::default_table);
            c.block_n = bn;
            c.num_splits = splits;
            const SparseMlaPlan plan = plan_sparse_mla_decode(p, algo, c, sm);
            sparse_mla_decode(p, o, plan, {ws, kScratch - 8192}, stream);
          }
      }
    }
    DSA_GPU_CHECK(cudaStreamSynchronize(stream));
  } catch (...) {
    cudaFree(buf);
    throw;
  }
  DSA_GPU_CHECK(cudaFree(buf));
}

}  // namespace dsa::gpu
