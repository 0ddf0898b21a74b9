// Indexer benchmark on the GPU: paged_mqa_logits (page 64 standard vs preshuffle, page 1 standard)
// over B ∈ {1, 16, 64, 128}, ctx ∈ {8192, 32768, 131072}, H = 64, D = 128, next_n ∈ {1, 2}, and
// top-k (k = 2048) over the logits it produced. Median latency of graph replays (each replay runs
// one call per rotation set; sets rotate over more than 2× the L2 so every call reads K from HBM),
// the bytes a call must move (K codes + scales read, logits written, q + weights + table read),
// GB/s, and the ratio to the device-to-device copy bandwidth measured in the same run (cudaMemcpy,
// bytes read + written). Also the first call after warm-up against a steady-state call (SPEC §7).
//
// usage: gpu_indexer_bench [--quick]   (--quick: B ∈ {1, 64}, ctx ∈ {8192, 32768})
#include "dsa/gpu/port.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/gpu/paged_mqa_logits.hpp"
#include "dsa/gpu/topk.hpp"
#include "dsa/layouts.hpp"

namespace {

using dsa::IndexKLayout;

__device__ std::uint32_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return static_cast<std::uint32_t>(x);
}

// Random e4m3fn codes (never NaN) in every value byte, scale 1/448·(1 + small) for every token.
__global__ void fill_cache(std::uint8_t* cache, dsa::IndexKGeometry g, std::uint64_t seed) {
  const std::int64_t tokens = g.num_blocks * g.page_tokens;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < tokens * 32;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t tok = i / 32, block = tok / g.page_tokens, t = tok % g.page_tokens;
    const int d0 = static_cast<int>(i % 32) * 4;
    std::uint8_t* page = cache + block * g.block_stride_bytes;
    const std::uint32_t r = mix(seed + i);
    for (int j = 0; j < 4; ++j) {
      std::uint8_t code = static_cast<std::uint8_t>(r >> (8 * j)) & 0xBF;  // |x| ≤ 2^0·1.875·…, no NaN
      page[dsa::layout::IndexK::value_offset(g.layout, g.head_dim, t, d0 + j)] = code;
    }
    if (d0 == 0)
      *reinterpret_cast<float*>(page + dsa::layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t)) =
          (1.0f + (r & 0xFF) / 256.0f) / 448.0f;
  }
}

__global__ void fill_bytes(std::uint8_t* p, std::int64_t n, std::uint64_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i] = static_cast<std::uint8_t>(mix(seed + i)) & 0xBF;
}

__global__ void fill_floats(float* p, std::int64_t n, std::uint64_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i] = (static_cast<float>(mix(seed + i) & 0xFFFF) / 32768.0f) - 1.0f;
}

template <class T>
T* device_alloc(std::size_t n) {
  void* p = nullptr;
  DSA_GPU_CHECK(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T)));
  return static_cast<T*>(p);
}

struct Timer {
  cudaEvent_t a, b;
  Timer() {
    DSA_GPU_CHECK(cudaEventCreate(&a));
    DSA_GPU_CHECK(cudaEventCreate(&b));
  }
  ~Timer() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  template <class F>
  float ms(cudaStream_t s, F&& f) {
    DSA_GPU_CHECK(cudaEventRecord(a, s));
    f();
    DSA_GPU_CHECK(cudaEventRecord(b, s));
    DSA_GPU_CHECK(cudaEventSynchronize(b));
    float t = 0;
    DSA_GPU_CHECK(cudaEventElapsedTime(&t, a, b));
    return t;
  }
};

float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Device-to-device copy bandwidth, bytes read + written per second.
double copy_bandwidth(cudaStream_t s) {
  const std::size_t bytes = std::size_t{1} << 30;
  std::uint8_t* a = device_alloc<std::uint8_t>(bytes);
  std::uint8_t* b = device_alloc<std::uint8_t>(bytes);
  fill_bytes<<<1024, 256, 0, s>>>(a, static_cast<std::int64_t>(bytes), 1);
  Timer timer;
  std::vector<float> t;
  for (int i = 0; i < 12; ++i)
    t.push_back(timer.ms(s, [&] { DSA_GPU_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s)); }));
  t.erase(t.begin(), t.begin() + 2);
  DSA_GPU_CHECK(cudaFree(a));
  DSA_GPU_CHECK(cudaFree(b));
  return 2.0 * static_cast<double>(bytes) / (median(t) * 1e-3);
}

// Replays `graph` `reps` times; median ms per replay.
float replay_ms(cudaGraphExec_t exec, cudaStream_t s, int reps) {
  Timer timer;
  std::vector<float> t;
  for (int i = 0; i < 3; ++i) DSA_GPU_CHECK(cudaGraphLaunch(exec, s));
  for (int i = 0; i < reps; ++i) t.push_back(timer.ms(s, [&] { DSA_GPU_CHECK(cudaGraphLaunch(exec, s)); }));
  return median(t);
}

struct Shape {
  IndexKLayout layout;
  std::int32_t page;
  std::int64_t B, ctx, N;
};

struct Result {
  double us = 0, bytes = 0, topk_us = 0;
};

Result run_shape(const Shape& sh, std::int64_t l2_bytes, cudaStream_t s, bool with_topk, bool report_first_call) {
  constexpr std::int64_t H = 64, D = 128;
  const std::int64_t rows = sh.B * sh.N;
  const std::int64_t blocks_per_seq = (sh.ctx + sh.page - 1) / sh.page;
  const double k_bytes = static_cast<double>(sh.B) * sh.ctx * (D + 4);
  const double logit_bytes = static_cast<double>(rows) * sh.ctx * 4;
  const double small_bytes = static_cast<double>(rows) * H * (D + 4) + sh.B * blocks_per_seq * 4.0;
  const double set_bytes = k_bytes + logit_bytes + small_bytes;
  const int sets = static_cast<int>(std::clamp<double>(2.0 * l2_bytes / set_bytes + 1, 1, 64));

  dsa::IndexKGeometry g = dsa::IndexKGeometry::packed(sh.layout, dsa::Fp8Format::e4m3fn,
                                                      sets * sh.B * blocks_per_seq, sh.page, D);
  std::uint8_t* cache = device_alloc<std::uint8_t>(static_cast<std::size_t>(g.bytes()));
  fill_cache<<<2048, 256, 0, s>>>(cache, g, 7);
  std::vector<std::int32_t> table(static_cast<std::size_t>(sets * sh.B * blocks_per_seq));
  for (std::size_t i = 0; i < table.size(); ++i) table[i] = static_cast<std::int32_t>(i);  // set-major
  std::int32_t* d_table = device_alloc<std::int32_t>(table.size());
  DSA_GPU_CHECK(cudaMemcpy(d_table, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
  std::vector<std::int32_t> ctx(static_cast<std::size_t>(sh.B), static_cast<std::int32_t>(sh.ctx));
  std::int32_t* d_ctx = device_alloc<std::int32_t>(ctx.size());
  DSA_GPU_CHECK(cudaMemcpy(d_ctx, ctx.data(), ctx.size() * 4, cudaMemcpyHostToDevice));
  std::uint8_t* q = device_alloc<std::uint8_t>(static_cast<std::size_t>(sets * rows * H * D));
  fill_bytes<<<256, 256, 0, s>>>(q, sets * rows * H * D, 11);
  float* w = device_alloc<float>(static_cast<std::size_t>(sets * rows * H));
  fill_floats<<<256, 256, 0, s>>>(w, sets * rows * H, 13);
  float* logits = device_alloc<float>(static_cast<std::size_t>(sets * rows * sh.ctx));
  std::int32_t* status = device_alloc<std::int32_t>(1);
  std::int32_t* idx = device_alloc<std::int32_t>(static_cast<std::size_t>(sets * rows * 2048));

  auto params = [&](int set) {
    dsa::gpu::PagedMqaLogitsParams p;
    p.batch = sh.B;
    p.next_n = sh.N;
    p.num_heads = H;
    p.head_dim = D;
    p.q = q + set * rows * H * D;
    p.weights = w + set * rows * H;
    p.context_lens = d_ctx;
    p.block_table = d_table + static_cast<std::int64_t>(set) * sh.B * blocks_per_seq;
    p.max_blocks = blocks_per_seq;
    p.cache = g;
    p.cache_bytes = cache;
    p.reader_layout = sh.layout;
    p.max_ctx = sh.ctx;
    p.logits = logits + static_cast<std::int64_t>(set) * rows * sh.ctx;
    p.logits_row_stride = sh.ctx;
    p.status = status;
    return p;
  };
  auto topk_params = [&](int set) {
    dsa::gpu::TopkParams t;
    t.logits = logits + static_cast<std::int64_t>(set) * rows * sh.ctx;
    t.rows = rows;
    t.row_stride = sh.ctx;
    t.width = sh.ctx;
    t.k = 2048;
    t.context_lens = d_ctx;
    t.next_n = sh.N;
    t.indices = idx + static_cast<std::int64_t>(set) * rows * 2048;
    return t;
  };

  Result r;
  Timer timer;
  if (report_first_call) {
    DSA_GPU_CHECK(cudaStreamSynchronize(s));
    const float first = timer.ms(s, [&] { dsa::gpu::paged_mqa_logits(params(0), s); });
    std::vector<float> steady;
    for (int i = 0; i < 10; ++i) steady.push_back(timer.ms(s, [&] { dsa::gpu::paged_mqa_logits(params(0), s); }));
    std::printf("first call after warmup(): %.1f us; steady state (median of 10, same buffers): %.1f us\n",
                first * 1e3, median(steady) * 1e3);
  }
  for (int pass = 0; pass < (with_topk ? 2 : 1); ++pass) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    DSA_GPU_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int set = 0; set < sets; ++set) {
      if (pass == 0) dsa::gpu::paged_mqa_logits(params(set), s);
      else dsa::gpu::topk_indices(topk_params(set), s);
    }
    DSA_GPU_CHECK(cudaStreamEndCapture(s, &graph));
    DSA_GPU_CHECK(cudaGraphInstantiateWithFlags(&exec, graph, 0));
    const float ms = replay_ms(exec, s, 20);
    (pass == 0 ? r.us : r.topk_us) = ms * 1e3 / sets;
    DSA_GPU_CHECK(cudaGraphExecDestroy(exec));
    DSA_GPU_CHECK(cudaGraphDestroy(graph));
  }
  std::int32_t st = -1;
  DSA_GPU_CHECK(cudaMemcpy(&st, status, 4, cudaMemcpyDeviceToHost));
  if (st != 0) std::printf("WARNING: status %d\n", st);
  r.bytes = set_bytes;
  for (void* p : {static_cast<void*>(cache), static_cast<void*>(d_table), static_cast<void*>(d_ctx),
                  static_cast<void*>(q), static_cast<void*>(w), static_cast<void*>(logits), static_cast<void*>(status),
                  static_cast<void*>(idx)})
    DSA_GPU_CHECK(cudaFree(p));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  int device = 0;
  DSA_GPU_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop;
  DSA_GPU_CHECK(cudaGetDeviceProperties(&prop, device));
  int l2 = 0;
  DSA_GPU_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  cudaStream_t s;
  DSA_GPU_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  dsa::gpu::paged_mqa_logits_warmup();
  dsa::gpu::topk_warmup();
  const double copy = copy_bandwidth(s);
  std::printf("device: %s, %d SMs, L2 %d MB; cudaMemcpy D2D %.0f GB/s (read + write)\n", prop.name,
              prop.multiProcessorCount, l2 >> 20, copy / 1e9);
  // SPEC §7: this process's first logits call (after warmup()) against steady-state calls.
  run_shape({IndexKLayout::standard, 64, 64, 8192, 1}, l2, s, false, true);

  const std::int64_t batches_full[] = {1, 16, 64, 128}, batches_quick[] = {1, 64};
  const std::int64_t ctxs_full[] = {8192, 32768, 131072}, ctxs_quick[] = {8192, 32768};
  std::vector<std::int64_t> batches(quick ? std::begin(batches_quick) : std::begin(batches_full),
                                    quick ? std::end(batches_quick) : std::end(batches_full));
  std::vector<std::int64_t> ctxs(quick ? std::begin(ctxs_quick) : std::begin(ctxs_full),
                                 quick ? std::end(ctxs_quick) : std::end(ctxs_full));
  struct Variant {
    const char* name;
    IndexKLayout layout;
    std::int32_t page;
  };
  const Variant variants[] = {{"std P64", IndexKLayout::standard, 64},
                              {"pre P64", IndexKLayout::preshuffle, 64},
                              {"std P1", IndexKLayout::standard, 1}};
  std::printf("\npaged_mqa_logits, H = 64, D = 128, e4m3fn; us = median per call (graph replay); %% = GB/s / copy\n");
  std::printf("%5s %7s %2s | %23s | %23s | %23s | %9s\n", "B", "ctx", "N", "std P64: us GB/s %", "pre P64: us GB/s %",
              "std P1: us GB/s %", "topk us");
  for (std::int64_t N : {1, 2})
    for (std::int64_t B : batches)
      for (std::int64_t ctx : ctxs) {
        std::printf("%5lld %7lld %2lld |", static_cast<long long>(B), static_cast<long long>(ctx),
                    static_cast<long long>(N));
        double topk_us = 0;
        std::string line;
        for (const Variant& v : variants) {
          const Result r = run_shape({v.layout, v.page, B, ctx, N}, l2, s, v.page == 64 && v.layout == IndexKLayout::standard,
                                     false);
          if (r.topk_us > 0) topk_us = r.topk_us;
          const double gbs = r.bytes / (r.us * 1e-6) / 1e9;
          std::printf(" %8.1f %7.0f %5.1f%% |", r.us, gbs, 100.0 * gbs * 1e9 / copy);
          std::fflush(stdout);
        }
        std::printf(" %9.1f\n", topk_us);
      }
  DSA_GPU_CHECK(cudaStreamDestroy(s));
  return 0;
}
