// Benchmark of the GPU sparse MLA decode (a program, not a test): for H = 128 and every
// B ∈ {1, 2, 8, 32, 64, 128}, S_q ∈ {1, 2}, topk ∈ {512, 1024, 2048}, layouts V32 and MODEL1, the
// fused and the staged path — median latency of CUDA-graph replays, TFLOPS, the ratio to the
// roofline floor (bytes over the device-to-device copy bandwidth and FLOPs over the bf16 GEMM rate,
// both measured in this run), the caller's workspace (peak temporary bytes), kernel launches per
// call, and side-by-side ratios fused/staged, split/unsplit and decode/default config at T = 1, 8,
// 64. Also: the first call after sparse_mla_warmup() against the steady state. Prints a table and
// writes JSON (--json FILE).
//
// The bf16 GEMM rate comes from cuBLAS (cublasGemmEx, 8192³, loaded with dlopen so that the
// build needs no cuBLAS library); where none loads, from an mma.sync loop (labelled). The
// mma.sync rate is measured either way: it is the ceiling of this kernel's instruction choice.
#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include <cublas_v2.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "dsa/gpu/sparse_mla.hpp"
#include "dsa/layouts.hpp"
#include "dsa/sparse_mla.hpp"
#include "sparse_mla_plan.hpp"  // detail::set_sparse_mla_ablation

namespace {

using namespace dsa;
using namespace dsa::gpu;

#define CHECK(x) DSA_GPU_CHECK(x)

// ---- device-side data ------------------------------------------------------------------------
__device__ std::uint32_t hash32(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<std::uint32_t>(x);
}

// Finite operands of moderate size for every token: fp8 codes with the top exponent bit clear
// (|x| ≤ 1.875, never NaN), scales 2^−4, RoPE bf16 in [−1, 1].
__global__ void fill_cache(MlaCacheGeometry g, std::uint8_t* values, std::uint8_t* scales, std::uint64_t seed) {
  const std::int64_t tokens = g.num_blocks * g.page_tokens;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < tokens;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t block = i / g.page_tokens, t = i % g.page_tokens;
    std::uint8_t* page = values + block * g.block_stride_bytes;
    const bool v32 = g.layout == MlaLayout::V32;
    const int nope = v32 ? layout::V32::nope_dims : layout::Model1::nope_dims;
    for (int d = 0; d < g.dim_qk(); ++d) {
      const std::uint32_t h = hash32(seed ^ (static_cast<std::uint64_t>(i) * 1024 + d));
      const std::int64_t off = v32 ? layout::V32::dim_offset(t, d) : layout::Model1::dim_offset(t, d);
      if (d < nope) {
        page[off] = static_cast<std::uint8_t>(h & 0xBF);
      } else {
        const std::uint16_t b = dsa::f32_to_bf16(static_cast<float>(static_cast<int>(h % 2001) - 1000) / 1000.0f);
        page[off] = static_cast<std::uint8_t>(b & 0xFF);
        page[off + 1] = static_cast<std::uint8_t>(b >> 8);
      }
    }
    if (v32) {
      for (int k = 0; k < layout::V32::num_scales; ++k) {
        const float s = 0.0625f;
        std::uint32_t bits;
        std::memcpy(&bits, &s, 4);
        for (int j = 0; j < 4; ++j) page[layout::V32::scale_offset(t, k) + j] = static_cast<std::uint8_t>(bits >> (8 * j));
      }
    } else {
      for (int k = 0; k < 8; ++k) {
        const std::uint8_t code = k < layout::Model1::num_scales ? 123 : 0;  // 2^−4
        if (g.layout == MlaLayout::MODEL1) page[layout::Model1::scale_offset(g.page_tokens, t, k)] = code;
        else scales[block * g.scale_block_stride_bytes + layout::Model1Split::scale_offset(t, k)] = code;
      }
    }
  }
}

__global__ void fill_bf16(std::uint16_t* x, std::int64_t n, std::uint64_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] = dsa::f32_to_bf16(static_cast<float>(static_cast<int>(hash32(seed ^ i) % 2001) - 1000) / 1000.0f);
}

// mma.sync peak: every warp keeps 8 independent accumulators busy.
__global__ void __launch_bounds__(256) mma_loop(float* sink, int iters) {
  std::uint32_t a[4] = {0x3F803F80u ^ threadIdx.x, 0x3F803F80u, 0x3F803F80u, 0x3F803F80u};
  float d[8][4] = {};
  for (int i = 0; i < iters; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) mma_bf16_16816(d[j], a, a[j & 3], a[(j + 1) & 3]);
  float s = 0;
  for (int j = 0; j < 8; ++j) s += d[j][0] + d[j][1] + d[j][2] + d[j][3];
  if (s == 1.2345f) sink[0] = s;  // keeps the loop alive
}

// ---- timing -----------------------------------------------------------------------------------
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Median of `reps` timed runs of f (each between two events), after `warm` untimed ones. µs.
template <class F>
double time_us(cudaStream_t s, F&& f, int warm = 5, int reps = 30) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  for (int i = 0; i < warm; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    CHECK(cudaEventRecord(a, s));
    f();
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.0);
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  return median(t);
}

double copy_bandwidth_gbs(cudaStream_t s) {
  const std::size_t n = std::size_t{1} << 31;  // 2 GiB each way
  void *x, *y;
  CHECK(cudaMalloc(&x, n));
  CHECK(cudaMalloc(&y, n));
  CHECK(cudaMemsetAsync(x, 1, n, s));
  const double us = time_us(s, [&] { CHECK(cudaMemcpyAsync(y, x, n, cudaMemcpyDeviceToDevice, s)); }, 2, 10);
  CHECK(cudaFree(x));
  CHECK(cudaFree(y));
  return 2.0 * n / (us * 1e-6) / 1e9;  // bytes read + written
}

struct GemmRate {
  double tflops = 0;
  std::string source;
};

GemmRate cublas_rate(cudaStream_t s) {
  void* lib = nullptr;
  for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"})
    if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  if (!lib) return {};
  using Create = cublasStatus_t (*)(cublasHandle_t*);
  using SetStream = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
  using Gemm = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                  const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                  cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  auto create = reinterpret_cast<Create>(dlsym(lib, "cublasCreate_v2"));
  auto set_stream = reinterpret_cast<SetStream>(dlsym(lib, "cublasSetStream_v2"));
  auto gemm = reinterpret_cast<Gemm>(dlsym(lib, "cublasGemmEx"));
  if (!create || !set_stream || !gemm) return {};
  cublasHandle_t h;
  if (create(&h) != CUBLAS_STATUS_SUCCESS) return {};
  set_stream(h, s);
  const int n = 8192;
  std::uint16_t *A, *B, *C;
  CHECK(cudaMalloc(&A, std::size_t(n) * n * 2));
  CHECK(cudaMalloc(&B, std::size_t(n) * n * 2));
  CHECK(cudaMalloc(&C, std::size_t(n) * n * 2));
  fill_bf16<<<1024, 256, 0, s>>>(A, std::int64_t(n) * n, 1);
  fill_bf16<<<1024, 256, 0, s>>>(B, std::int64_t(n) * n, 2);
  const float alpha = 1, beta = 0;
  bool ok = true;
  const double us = time_us(s, [&] {
    ok = ok && gemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, A, CUDA_R_16BF, n, B, CUDA_R_16BF, n, &beta, C,
                    CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
  }, 3, 10);
  CHECK(cudaFree(A));
  CHECK(cudaFree(B));
  CHECK(cudaFree(C));
  if (!ok) return {};
  return {2.0 * n * n * double(n) / (us * 1e-6) / 1e12, "cuBLAS bf16 GEMM 8192^3"};
}

double mma_sync_rate(cudaStream_t s, int sms) {
  float* sink;
  CHECK(cudaMalloc(&sink, 4));
  const int iters = 4096, blocks = sms * 4;
  const double us = time_us(s, [&] { mma_loop<<<blocks, 256, 0, s>>>(sink, iters); }, 2, 10);
  CHECK(cudaFree(sink));
  return double(blocks) * 8 * iters * 8 * 4096.0 / (us * 1e-6) / 1e12;
}

// ---- problems ---------------------------------------------------------------------------------
constexpr int kH = 128;
constexpr std::int32_t kCtx = 8192;  // tokens of context per sequence (indices are drawn from them)

struct Pool {  // one cache per layout, big enough for B = 128 sequences of kCtx tokens
  MlaCacheGeometry geo;
  std::uint8_t* values = nullptr;
  std::uint8_t* scales = nullptr;
};

Pool make_pool(MlaLayout l, cudaStream_t s) {
  Pool p;
  p.geo = MlaCacheGeometry::packed(l, Fp8Format::e4m3fn, 128 * kCtx / 64, 64);
  CHECK(cudaMalloc(&p.values, p.geo.values_bytes()));
  if (p.geo.scales_bytes() > 0) CHECK(cudaMalloc(&p.scales, p.geo.scales_bytes()));
  fill_cache<<<2048, 256, 0, s>>>(p.geo, p.values, p.scales, 0xC0FFEE);
  CHECK(cudaGetLastError());
  return p;
}

struct Problem {
  std::int64_t B = 1, S_q = 1;
  std::int32_t topk = 0;
  MlaLayout layout = MlaLayout::V32;
  std::uint16_t* q = nullptr;
  std::int32_t* indices = nullptr;
  SparseMlaDecodeParams params;
  std::uint16_t* out = nullptr;
  float* lse = nullptr;
  std::int64_t rows() const { return B * S_q; }
};

// Physical indices: row (b, s) selects topk distinct tokens of sequence b's own kCtx tokens.
Problem make_problem(const Pool& pool, std::int64_t B, std::int64_t S_q, std::int32_t topk, cudaStream_t s) {
  Problem p;
  p.B = B;
  p.S_q = S_q;
  p.topk = topk;
  p.layout = pool.geo.layout;
  const int dim = pool.geo.dim_qk();
  const std::int64_t rows = B * S_q;
  CHECK(cudaMalloc(&p.q, rows * kH * dim * 2));
  fill_bf16<<<256, 256, 0, s>>>(p.q, rows * kH * dim, 7);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(rows * topk));
  std::mt19937 rng(static_cast<unsigned>(B * 131 + S_q * 7 + topk));
  std::vector<std::int32_t> perm(kCtx);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (int i = 0; i < kCtx; ++i) perm[i] = i;
    for (int j = 0; j < topk; ++j) std::swap(perm[j], perm[j + rng() % (kCtx - j)]);
    std::sort(perm.begin(), perm.begin() + topk);
    for (int j = 0; j < topk; ++j) idx[static_cast<std::size_t>(r * topk + j)] = static_cast<std::int32_t>((r / S_q) * kCtx + perm[j]);
  }
  CHECK(cudaMalloc(&p.indices, idx.size() * 4));
  CHECK(cudaMemcpy(p.indices, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&p.out, rows * kH * 512 * 2));
  CHECK(cudaMalloc(&p.lse, rows * kH * 4));
  auto& d = p.params;
  d.B = B;
  d.S_q = S_q;
  d.H = kH;
  d.q = {p.q, static_cast<std::size_t>(rows * kH * dim)};
  d.cache.geo = pool.geo;
  d.cache.values = {pool.values, static_cast<std::size_t>(pool.geo.values_bytes())};
  d.cache.scales = {pool.scales, static_cast<std::size_t>(pool.geo.scales_bytes())};
  d.indices = {p.indices, idx.size()};
  d.topk = topk;
  return p;
}

void free_problem(Problem& p) {
  CHECK(cudaFree(p.q));
  CHECK(cudaFree(p.indices));
  CHECK(cudaFree(p.out));
  CHECK(cudaFree(p.lse));
}

struct Timing {
  double us = 0;
  SparseMlaPlan plan;
};

// Median latency of graph replays of one call.
Timing time_call(const Problem& p, MlaAlgo algo, const SparseMlaConfig& cfg, int sms, cudaStream_t s) {
  Timing t;
  t.plan = plan_sparse_mla_decode(p.params, algo, cfg, sms);
  void* ws = nullptr;
  if (t.plan.workspace_bytes > 0) CHECK(cudaMalloc(&ws, t.plan.workspace_bytes));
  const SparseMlaOutputs o{{p.out, static_cast<std::size_t>(p.rows() * kH * 512)}, {p.lse, static_cast<std::size_t>(p.rows() * kH)}, {}};
  sparse_mla_decode(p.params, o, t.plan, {ws, t.plan.workspace_bytes}, s);  // eager once
  cudaGraph_t g;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  sparse_mla_decode(p.params, o, t.plan, {ws, t.plan.workspace_bytes}, s);
  CHECK(cudaStreamEndCapture(s, &g));
  CHECK(cudaGraphInstantiateWithFlags(&exec, g, 0));
  t.us = time_us(s, [&] { CHECK(cudaGraphLaunch(exec, s)); }, 5, 30);
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(g));
  if (ws) CHECK(cudaFree(ws));
  return t;
}

std::int64_t token_bytes(MlaLayout l) {
  return l == MlaLayout::V32 ? layout::V32::token_bytes : layout::Model1::token_bytes;
}

SparseMlaConfig table(ConfigTable t, int splits = -1) {
  SparseMlaConfig c = builtin_config(t);
  if (splits >= 0) c.num_splits = splits;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = nullptr;
  bool quick = false, ablate = false, profile = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--ablate")) ablate = true;    // time with parts of the kernel skipped
    else if (!std::strcmp(argv[i], "--profile")) profile = true;  // one eager fused call, for ncu
  }
  try {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaDeviceProp prop;
    int dev = 0;
    CHECK(cudaGetDevice(&dev));
    CHECK(cudaGetDeviceProperties(&prop, dev));
    const int sms = device_sm_count();
    std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, sms, prop.l2CacheSize >> 20);

    if (profile) {  // V32, B = 128, S_q = 1, topk = 2048, fused: one attention launch, nothing else
      const Pool pool = make_pool(MlaLayout::V32, s);
      Problem p = make_problem(pool, 128, 1, 2048, s);
      const SparseMlaPlan plan = plan_sparse_mla_decode(p.params, MlaAlgo::fused, table(ConfigTable::default_table), sms);
      const SparseMlaOutputs o{{p.out, static_cast<std::size_t>(128 * kH * 512)}, {p.lse, 128 * kH}, {}};
      sparse_mla_decode(p.params, o, plan, {nullptr, 0}, s);
      CHECK(cudaStreamSynchronize(s));
      std::printf("profile: one fused launch, %d splits\n", plan.num_splits);
      return 0;
    }
    if (ablate) {  // which part of the kernel costs what: graph-replay medians with parts skipped
      const Pool pool = make_pool(MlaLayout::V32, s);
      for (const std::int64_t B : {128, 1}) {
        Problem p = make_problem(pool, B, 1, 2048, s);
        for (const MlaAlgo algo : {MlaAlgo::fused, MlaAlgo::staged}) {
          std::printf("ablation V32 B=%ld topk=2048 %s (single pass):", static_cast<long>(B), to_string(algo));
          for (const int mask : {0, 1, 2, 4, 8, 3, 11, 15}) {
            gpu::detail::set_sparse_mla_ablation(mask);
            const Timing t = time_call(p, algo, table(ConfigTable::default_table, 1), sms, s);
            std::printf("  [%d] %.1f", mask, t.us);
          }
          gpu::detail::set_sparse_mla_ablation(0);
          std::printf("  us  (1 QK, 2 PV, 4 loads, 8 softmax)\n");
        }
        free_problem(p);
      }
      return 0;
    }

    // First call after warm-up vs steady state (before any other sparse MLA launch).
    const Pool v32 = make_pool(MlaLayout::V32, s);
    const Pool m1 = make_pool(MlaLayout::MODEL1, s);
    CHECK(cudaStreamSynchronize(s));
    // B = 1 (1.3 MB of cache: later calls find it in L2) and B = 128 (172 MB: they cannot), so
    // that a cold L2 is not mistaken for a warm-up cost.
    double first_us = 0, steady_us = 0, first_big_us = 0, steady_big_us = 0;
    sparse_mla_warmup(s);
    for (const std::int64_t B : {1, 128}) {
      Problem p = make_problem(v32, B, 1, 2048, s);
      const SparseMlaPlan plan = plan_sparse_mla_decode(p.params, MlaAlgo::fused,
                                                        table(B == 1 ? ConfigTable::decode_table : ConfigTable::default_table), sms);
      void* ws = nullptr;
      CHECK(cudaMalloc(&ws, std::max<std::int64_t>(plan.workspace_bytes, 256)));
      CHECK(cudaStreamSynchronize(s));
      const SparseMlaOutputs o{{p.out, static_cast<std::size_t>(B * kH * 512)}, {p.lse, static_cast<std::size_t>(B * kH)}, {}};
      auto call = [&] { sparse_mla_decode(p.params, o, plan, {ws, plan.workspace_bytes}, s); };
      const double first = time_us(s, call, 0, 1);
      const double steady = time_us(s, call, 5, 30);
      (B == 1 ? first_us : first_big_us) = first;
      (B == 1 ? steady_us : steady_big_us) = steady;
      CHECK(cudaFree(ws));
      free_problem(p);
      std::printf("B=%ld topk=2048 V32 fused: first call after warm-up %.1f us; steady state (eager, median of 30) %.1f us\n",
                  static_cast<long>(B), first, steady);
    }

    const double bw = copy_bandwidth_gbs(s);
    GemmRate gemm = cublas_rate(s);
    const double mma_rate = mma_sync_rate(s, sms);
    if (gemm.tflops == 0) gemm = {mma_rate, "mma.sync loop (cuBLAS not loadable)"};
    std::printf("copy bandwidth (D2D, read+write): %.0f GB/s; bf16 MMA rate: %.0f TFLOPS (%s); mma.sync rate: %.0f TFLOPS\n",
                bw, gemm.tflops, gemm.source.c_str(), mma_rate);

    std::vector<std::int64_t> Bs = {1, 2, 8, 32, 64, 128};
    std::vector<std::int32_t> topks = {512, 1024, 2048};
    std::vector<std::int64_t> Sqs = {1, 2};
    if (quick) {
      Bs = {1, 8, 128};
      topks = {2048};
      Sqs = {1};
    }
    std::string json = "{\n  \"device\": \"" + std::string(prop.name) + "\",\n  \"sm_count\": " + std::to_string(sms) +
                       ",\n  \"copy_bandwidth_gbs\": " + std::to_string(bw) + ",\n  \"mma_rate_tflops\": " +
                       std::to_string(gemm.tflops) + ",\n  \"mma_rate_source\": \"" + gemm.source +
                       "\",\n  \"mma_sync_rate_tflops\": " + std::to_string(mma_rate) +
                       ",\n  \"first_call_after_warmup_us\": " + std::to_string(first_us) +
                       ",\n  \"steady_state_eager_us\": " + std::to_string(steady_us) +
                       ",\n  \"first_call_after_warmup_B128_us\": " + std::to_string(first_big_us) +
                       ",\n  \"steady_state_eager_B128_us\": " + std::to_string(steady_big_us) + ",\n  \"rows\": [\n";
    std::printf("\n%-6s %4s %3s %5s | %9s %7s %6s %9s %3s %3s | %9s %7s %6s %10s %3s | %7s\n", "layout", "B", "S_q",
                "topk", "fused us", "TFLOPS", "floor%", "ws bytes", "spl", "ln", "staged us", "TFLOPS", "floor%",
                "ws bytes", "ln", "st/fu");
    bool first_row = true;
    std::vector<std::string> ratio_lines;
    for (const Pool* pool : {&v32, &m1}) {
      const MlaLayout l = pool->geo.layout;
      for (const std::int64_t B : Bs)
        for (const std::int64_t Sq : Sqs)
          for (const std::int32_t topk : topks) {
            Problem p = make_problem(*pool, B, Sq, topk, s);
            const std::int64_t T = B * Sq;
            const ConfigTable base = T == 1 ? ConfigTable::decode_table : ConfigTable::default_table;
            const Timing fu = time_call(p, MlaAlgo::fused, table(base), sms, s);
            const Timing st = time_call(p, MlaAlgo::staged, table(base), sms, s);
            const int dim = pool->geo.dim_qk();
            const double flops = 2.0 * T * kH * topk * (dim + 512);
            const double bytes = double(T) * topk * (token_bytes(l) + 4) + double(T) * kH * (dim + 512) * 2;
            const double floor_us = std::max(bytes / (bw * 1e9), flops / (gemm.tflops * 1e12)) * 1e6;
            auto tf = [&](double us) { return flops / (us * 1e-6) / 1e12; };
            std::printf("%-6s %4ld %3ld %5d | %9.1f %7.1f %6.1f %9ld %3d %3d | %9.1f %7.1f %6.1f %10ld %3d | %7.2f\n",
                        to_string(l), static_cast<long>(B), static_cast<long>(Sq), topk, fu.us, tf(fu.us),
                        100 * floor_us / fu.us, static_cast<long>(fu.plan.workspace_bytes), fu.plan.num_splits,
                        fu.plan.launches, st.us, tf(st.us), 100 * floor_us / st.us,
                        static_cast<long>(st.plan.workspace_bytes), st.plan.launches, st.us / fu.us);
            char row[1024];
            std::snprintf(row, sizeof row,
                          "%s    {\"layout\": \"%s\", \"B\": %ld, \"S_q\": %ld, \"H\": %d, \"topk\": %d, \"flops\": %.0f, "
                          "\"bytes\": %.0f, \"floor_us\": %.3f, \"fused\": {\"us\": %.3f, \"tflops\": %.2f, "
                          "\"floor_ratio\": %.4f, \"workspace_bytes\": %ld, \"staging_bytes\": %ld, \"num_splits\": %d, "
                          "\"block_n\": %d, \"launches\": %d}, \"staged\": {\"us\": %.3f, \"tflops\": %.2f, "
                          "\"floor_ratio\": %.4f, \"workspace_bytes\": %ld, \"staging_bytes\": %ld, \"num_splits\": %d, "
                          "\"launches\": %d}}",
                          first_row ? "" : ",\n", to_string(l), static_cast<long>(B), static_cast<long>(Sq), kH, topk,
                          flops, bytes, floor_us, fu.us, tf(fu.us), floor_us / fu.us,
                          static_cast<long>(fu.plan.workspace_bytes), static_cast<long>(fu.plan.staging_bytes),
                          fu.plan.num_splits, fu.plan.config.block_n, fu.plan.launches, st.us, tf(st.us),
                          floor_us / st.us, static_cast<long>(st.plan.workspace_bytes),
                          static_cast<long>(st.plan.staging_bytes), st.plan.num_splits, st.plan.launches);
            json += row;
            first_row = false;
            // Side-by-side ratios at T = 1, 8, 64 (S_q = 1).
            if (Sq == 1 && (T == 1 || T == 8 || T == 64)) {
              const Timing single = time_call(p, MlaAlgo::fused, table(base, 1), sms, s);
              const Timing dec = time_call(p, MlaAlgo::fused, table(ConfigTable::decode_table), sms, s);
              const Timing def = time_call(p, MlaAlgo::fused, table(ConfigTable::default_table), sms, s);
              // Twice the heuristic's split count (one key tile per split), to judge the heuristic.
              const int more = std::min(64, 2 * fu.plan.num_splits);
              const Timing twice = time_call(p, MlaAlgo::fused, table(base, more), sms, s);
              char line[640];
              std::snprintf(line, sizeof line,
                            "%-6s T=%-3ld topk=%-4d  staged/fused %.2f | split(%d)/unsplit %.2f (%.1f vs %.1f us) | "
                            "decode/default %.2f (%.1f us, %d splits, bn %d vs %.1f us, %d splits, bn %d) | "
                            "%d splits %.1f us",
                            to_string(l), static_cast<long>(T), topk, st.us / fu.us, fu.plan.num_splits,
                            fu.us / single.us, fu.us, single.us, dec.us / def.us, dec.us, dec.plan.num_splits,
                            dec.plan.config.block_n, def.us, def.plan.num_splits, def.plan.config.block_n, more,
                            twice.us);
              ratio_lines.push_back(line);
            }
            free_problem(p);
          }
    }
    json += "\n  ],\n  \"ratios\": [\n";
    for (std::size_t i = 0; i < ratio_lines.size(); ++i) json += "    \"" + ratio_lines[i] + (i + 1 < ratio_lines.size() ? "\",\n" : "\"\n");
    json += "  ]\n}\n";
    std::printf("\nratios (time over time, side by side; < 1 means the first is faster):\n");
    for (const auto& l : ratio_lines) std::printf("  %s\n", l.c_str());
    if (json_path) {
      if (FILE* f = std::fopen(json_path, "w")) {
        std::fputs(json.c_str(), f);
        std::fclose(f);
      }
    }
    CHECK(cudaStreamDestroy(s));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparse_mla_decode_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
