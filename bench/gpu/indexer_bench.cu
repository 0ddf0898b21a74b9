// Indexer benchmark on the GPU: paged_mqa_logits (page 64 standard vs preshuffle, page 1 standard)
// over B ∈ {1, 16, 64, 128}, ctx ∈ {8192, 32768, 131072}, H = 64, D = 128, next_n ∈ {1, 2}, and
// top-k (k = 2048) over the logits it produced. Median time per call of graph replays (a graph holds
// calls rotating over sets that together exceed 2× the L2, so every call reads K from HBM; see
// us_per_call for how many calls and replays), the bytes a call must move (K codes + scales read, logits
// written, q + weights + table read), GB/s, and the ratio to the device-to-device copy bandwidth
// measured in the same run (cudaMemcpy, bytes read + written). The floor column times a plain
// streaming pass over the same bytes the same way: what any kernel of this shape pays for launches
// and ramps. Also the first call after warm-up against a steady-state call (SPEC §7), with what
// tells its parts apart: its host side, the next set's first call (untouched buffers, warm
// kernels) and steady-state calls after the L2 has been flushed.
//
// usage: gpu_indexer_bench [--quick]   (--quick: B ∈ {1, 64}, ctx ∈ {8192, 32768})
// The DSA decode step end to end (SPEC §6.5; gpu/dsa_decode_step.cpp) is the last table:
// B ∈ {1, 16, 64, 128} ({1, 64} with --quick), ctx ∈ {8192, 32768}, next_n 1, indexer H 64 on
// standard page-64 K, MLA H 128 over a V32 page-64 cache, topk 2048; each stage's median (graphs of
// that stage alone) beside the end-to-end graph. `--dsa-step` runs only that table.
#include "dsa/gpu/port.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/gpu/dsa_decode_step.hpp"
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

// Graph timing. A graph holds calls rotating over the sets, enough of them for kGraphWorkUs of
// work (at most kMaxCallsPerGraph), and short graphs are replayed in batches of up to
// kBatchWorkUs: with one replay of one short graph between two events the interval holds the
// host's submission and the graph's launch (the GPU runs the start event first). Long work is
// not chained further: back to back for milliseconds the GPU reaches its power cap and lowers
// the SM clock. Measured on an H200:
//   B = 64, ctx = 8192: 28.1 µs per call with 2 calls per graph and one replay per event pair,
//   25.0 with 16 calls and batches of 10; a plain streaming pass over the same bytes: 20.1 → 17.5;
//   B = 128, ctx = 131072: 568 µs per call alone, 651 µs with 16 calls per graph in batches
//   (SM clock 1980 → 1545 MHz, throttle reason: software power cap, 620 W).
inline constexpr double kGraphWorkUs = 400;
inline constexpr double kBatchWorkUs = 1000;
inline constexpr int kMaxCallsPerGraph = 16;
inline constexpr int kMaxReplayBatch = 5;

// Captures calls(0), …, calls(n − 1) (call i uses rotation set i % sets) into graphs and returns the
// median µs per call: n and the replay batch from one eager call's time (see above).
template <class F>
double us_per_call(cudaStream_t s, int sets, F&& calls) {
  Timer timer;
  calls(0);
  const double once_us = std::max(1.0, timer.ms(s, [&] { calls(0); }) * 1e3);
  const int n = std::clamp(static_cast<int>(std::ceil(kGraphWorkUs / once_us)), sets, std::max(sets, kMaxCallsPerGraph));
  const int batch = std::clamp(static_cast<int>(kBatchWorkUs / (n * once_us)), 1, kMaxReplayBatch);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  DSA_GPU_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < n; ++i) calls(i);
  DSA_GPU_CHECK(cudaStreamEndCapture(s, &graph));
  DSA_GPU_CHECK(cudaGraphInstantiateWithFlags(&exec, graph, 0));
  for (int i = 0; i < 3; ++i) DSA_GPU_CHECK(cudaGraphLaunch(exec, s));
  std::vector<float> t;
  for (int i = 0; i < 10; ++i)
    t.push_back(timer.ms(s, [&] {
                  for (int j = 0; j < batch; ++j) DSA_GPU_CHECK(cudaGraphLaunch(exec, s));
                }) /
                batch);
  DSA_GPU_CHECK(cudaGraphExecDestroy(exec));
  DSA_GPU_CHECK(cudaGraphDestroy(graph));
  return median(t) * 1e3 / n;
}

// The streaming floor of a logits call: one pass reading `n16` 16-byte words (the K pages a call
// reads) and writing `nout` floats (its logits), grid-strided with four loads in flight per thread.
__global__ void __launch_bounds__(512) stream_floor(const uint4* __restrict__ in, std::int64_t n16,
                                                    float* __restrict__ out, std::int64_t nout) {
  std::uint32_t acc = 0;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    const uint4 a = __ldg(in + i), b = __ldg(in + i + stride), c = __ldg(in + i + 2 * stride),
                d = __ldg(in + i + 3 * stride);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n16; i += stride) {
    const uint4 a = __ldg(in + i);
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  // The words' xor decides nothing but keeps the loads; the stores write every logit.
  for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; j < nout; j += stride)
    out[j] = __uint_as_float(acc & 0x3F000000u);
}

struct Shape {
  IndexKLayout layout;
  std::int32_t page;
  std::int64_t B, ctx, N;
};

struct Result {
  double us = 0, bytes = 0, topk_us = 0, floor_us = 0;
};

Result run_shape(const Shape& sh, std::int64_t l2_bytes, cudaStream_t s, bool with_topk, bool report_first_call,
                 bool with_floor) {
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
  if (report_first_call) {
    Timer timer;
    DSA_GPU_CHECK(cudaStreamSynchronize(s));
    // The first call reads buffers no call has touched (cold L2); a fair steady state is as cold:
    // eager calls rotating over the sets (together > 2× the L2). The L2-warm figure (the first
    // call's buffers again) is printed too.
    // Each timed call also times its host side (validation, tensor-map encoding, launches): while
    // the host enqueues, the GPU waits, and the events count it.
    double host_us = 0;
    const auto call = [&](int set) {
      const auto t0 = std::chrono::steady_clock::now();
      dsa::gpu::paged_mqa_logits(params(set), s);
      host_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    };
    const float first = timer.ms(s, [&] { call(0); });
    const double first_host_us = host_us;
    // The next set's first call reads and writes buffers no call has touched either, with the
    // kernels' code and state now warm: it tells the buffers' first touch from the kernels' own
    // first-call cost.
    char next_set_first[32] = "- (one set)";
    if (sets > 1) std::snprintf(next_set_first, sizeof next_set_first, "%.1f us", timer.ms(s, [&] { call(1); }) * 1e3);
    std::vector<float> rotating, same, flushed, host;
    for (int i = 2; i <= 11; ++i) {
      rotating.push_back(timer.ms(s, [&] { call(i % sets); }));
      host.push_back(static_cast<float>(host_us));
    }
    for (int i = 0; i < 10; ++i) same.push_back(timer.ms(s, [&] { call(0); }));
    // As the first call found the device: everything (the kernels' code and constants too) pushed
    // out of the L2 by writes of twice its size, as the bench's set-up did before the first call.
    std::uint8_t* scratch = device_alloc<std::uint8_t>(static_cast<std::size_t>(2 * l2_bytes));
    for (int i = 0; i < 5; ++i) {
      DSA_GPU_CHECK(cudaMemsetAsync(scratch, i, static_cast<std::size_t>(2 * l2_bytes), s));
      flushed.push_back(timer.ms(s, [&] { call(i % sets); }));
    }
    DSA_GPU_CHECK(cudaStreamSynchronize(s));
    DSA_GPU_CHECK(cudaFree(scratch));
    std::printf("first call after warmup(): %.1f us (host side %.1f us); the next set's first call (untouched "
                "buffers, warm kernels): %s; steady state, eager, median of 10: %.1f us over rotating buffers "
                "(cold L2, as the first call; host side %.1f us), %.1f us on the first call's buffers (L2-warm); "
                "after the L2 is flushed by 2x its size of writes, median of 5: %.1f us; %d sets\n",
                first * 1e3, first_host_us, next_set_first, median(rotating) * 1e3, median(host),
                median(same) * 1e3, median(flushed) * 1e3, sets);
  }
  r.us = us_per_call(s, sets, [&](int i) { dsa::gpu::paged_mqa_logits(params(i % sets), s); });
  if (with_topk) r.topk_us = us_per_call(s, sets, [&](int i) { dsa::gpu::topk_indices(topk_params(i % sets), s); });
  if (with_floor) {
    int device = 0, sms = 0;
    DSA_GPU_CHECK(cudaGetDevice(&device));
    DSA_GPU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    const std::int64_t set_k_bytes = sh.B * blocks_per_seq * g.block_stride_bytes;  // a set's pages, contiguous
    r.floor_us = us_per_call(s, sets, [&](int i) {
      const int set = i % sets;
      stream_floor<<<4 * sms, 512, 0, s>>>(reinterpret_cast<const uint4*>(cache + set * set_k_bytes), set_k_bytes / 16,
                                           logits + static_cast<std::int64_t>(set) * rows * sh.ctx, rows * sh.ctx);
      DSA_GPU_CHECK(cudaGetLastError());
    });
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

// ---- the DSA decode step end to end ------------------------------------------------------------
// A V32 cache: random e4m3fn codes (never NaN), positive fp32 scales near 1/448, bf16 RoPE in
// [−1, 1], every token of every page.
__global__ void fill_v32_cache(std::uint8_t* cache, std::int64_t tokens, std::int64_t page_tokens,
                               std::int64_t block_stride, std::uint64_t seed) {
  for (std::int64_t tok = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; tok < tokens;
       tok += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    std::uint8_t* page = cache + tok / page_tokens * block_stride;
    const std::int64_t t = tok % page_tokens;
    for (int d = 0; d < dsa::layout::V32::nope_dims; d += 4) {
      const std::uint32_t r = mix(seed + tok * 1024 + d);
      for (int j = 0; j < 4; ++j) page[dsa::layout::V32::dim_offset(t, d + j)] = static_cast<std::uint8_t>(r >> (8 * j)) & 0xBF;
    }
    for (int k = 0; k < dsa::layout::V32::num_scales; ++k) {
      const float sc = (1.0f + static_cast<float>(mix(seed + tok * 1024 + 600 + k) & 0xFF) / 256.0f) / 448.0f;
      std::memcpy(page + dsa::layout::V32::scale_offset(t, k), &sc, 4);
    }
    for (int d = dsa::layout::V32::nope_dims; d < dsa::layout::V32::dim_qk; ++d) {
      const float x = static_cast<float>(mix(seed + tok * 1024 + d) & 0xFFFF) / 32768.0f - 1.0f;
      std::uint32_t bits;
      std::memcpy(&bits, &x, 4);
      const std::uint16_t h = static_cast<std::uint16_t>(bits >> 16);
      std::memcpy(page + dsa::layout::V32::dim_offset(t, d), &h, 2);
    }
  }
}

// bf16 values in [−1, 1] (random bytes would hold NaN and inf codes).
__global__ void fill_bf16(std::uint16_t* p, std::int64_t n, std::uint64_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float x = static_cast<float>(mix(seed + i) & 0xFFFF) / 32768.0f - 1.0f;
    std::uint32_t bits;
    std::memcpy(&bits, &x, 4);
    p[i] = static_cast<std::uint16_t>(bits >> 16);
  }
}

struct DsaStepResult {
  double logits_us = 0, topk_us = 0, mla_us = 0, step_us = 0;
  int splits = 0, sets = 0;
};

// Median per step of graph replays over `sets` rotation sets (each its own index K, MLA cache,
// tables, queries, workspace and outputs): the three stages each in a graph of its own, then the
// whole step (dsa_decode_step) in one graph.
DsaStepResult run_dsa_step(std::int64_t B, std::int64_t ctx, std::int64_t l2_bytes, cudaStream_t s) {
  constexpr std::int64_t H_idx = 64, D = 128, N = 1, P = 64;
  constexpr std::int32_t H_mla = 128, topk = 2048;
  const std::int64_t rows = B * N, blocks_per_seq = (ctx + P - 1) / P;
  // Bytes one step must move: index K read, logits written and read back by the top-k, the
  // selected MLA tokens read, q / weights / tables, outputs.
  const double step_bytes = static_cast<double>(B) * ctx * (D + 4) + 2.0 * rows * ctx * 4 +
                            static_cast<double>(rows) * topk * dsa::layout::V32::token_bytes +
                            rows * (H_idx * (D + 4) + H_mla * (576 * 2 + 512 * 2 + 4)) + B * blocks_per_seq * 8.0;
  const int sets = static_cast<int>(std::clamp<double>(2.0 * l2_bytes / step_bytes + 1, 1, 16));

  const dsa::IndexKGeometry kg = dsa::IndexKGeometry::packed(IndexKLayout::standard, dsa::Fp8Format::e4m3fn,
                                                             sets * B * blocks_per_seq, P, D);
  const dsa::MlaCacheGeometry mg = dsa::MlaCacheGeometry::packed(dsa::MlaLayout::V32, dsa::Fp8Format::e4m3fn,
                                                                 sets * B * blocks_per_seq, P);
  std::uint8_t* kcache = device_alloc<std::uint8_t>(static_cast<std::size_t>(kg.bytes()));
  std::uint8_t* mcache = device_alloc<std::uint8_t>(static_cast<std::size_t>(mg.values_bytes()));
  fill_cache<<<2048, 256, 0, s>>>(kcache, kg, 7);
  fill_v32_cache<<<2048, 256, 0, s>>>(mcache, mg.capacity_tokens(), P, mg.block_stride_bytes, 17);
  DSA_GPU_CHECK(cudaGetLastError());
  // Both tables set-major and identical: sequence b of set r owns blocks [(r·B + b)·bps, …).
  std::vector<std::int32_t> table(static_cast<std::size_t>(sets * B * blocks_per_seq));
  for (std::size_t i = 0; i < table.size(); ++i) table[i] = static_cast<std::int32_t>(i);
  std::int32_t* d_table = device_alloc<std::int32_t>(table.size());
  DSA_GPU_CHECK(cudaMemcpy(d_table, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
  std::vector<std::int32_t> lens(static_cast<std::size_t>(B), static_cast<std::int32_t>(ctx));
  std::int32_t* d_ctx = device_alloc<std::int32_t>(lens.size());
  DSA_GPU_CHECK(cudaMemcpy(d_ctx, lens.data(), lens.size() * 4, cudaMemcpyHostToDevice));
  std::uint8_t* q_idx = device_alloc<std::uint8_t>(static_cast<std::size_t>(sets * rows * H_idx * D));
  fill_bytes<<<256, 256, 0, s>>>(q_idx, sets * rows * H_idx * D, 11);
  float* w = device_alloc<float>(static_cast<std::size_t>(sets * rows * H_idx));
  fill_floats<<<256, 256, 0, s>>>(w, sets * rows * H_idx, 13);
  const std::int64_t q_elems = rows * H_mla * 576, o_elems = rows * H_mla * 512;
  std::uint16_t* q_mla = device_alloc<std::uint16_t>(static_cast<std::size_t>(sets * q_elems));
  fill_bf16<<<1024, 256, 0, s>>>(q_mla, sets * q_elems, 19);
  std::uint16_t* out = device_alloc<std::uint16_t>(static_cast<std::size_t>(sets * o_elems));
  float* lse = device_alloc<float>(static_cast<std::size_t>(sets * rows * H_mla));
  DSA_GPU_CHECK(cudaGetLastError());

  auto params = [&](int set) {
    dsa::gpu::DsaDecodeStepParams p;
    auto& x = p.indexer;
    x.batch = B;
    x.next_n = N;
    x.num_heads = H_idx;
    x.head_dim = D;
    x.q = q_idx + set * rows * H_idx * D;
    x.weights = w + set * rows * H_idx;
    x.context_lens = d_ctx;
    x.block_table = d_table + static_cast<std::int64_t>(set) * B * blocks_per_seq;
    x.max_blocks = blocks_per_seq;
    x.cache = kg;
    x.cache_bytes = kcache;
    x.reader_layout = IndexKLayout::standard;
    x.max_ctx = ctx;
    p.topk = topk;
    auto& m = p.mla;
    m.B = B;
    m.S_q = N;
    m.H = H_mla;
    m.q = {q_mla + set * q_elems, static_cast<std::size_t>(q_elems)};
    m.cache.geo = mg;
    m.cache.values = {mcache, static_cast<std::size_t>(mg.values_bytes())};
    m.block_table = {d_table + static_cast<std::int64_t>(set) * B * blocks_per_seq,
                     static_cast<std::size_t>(B * blocks_per_seq)};
    m.max_blocks = blocks_per_seq;
    return p;
  };
  auto outputs = [&](int set) {
    return dsa::SparseMlaOutputs{{out + set * o_elems, static_cast<std::size_t>(o_elems)},
                                 {lse + set * rows * H_mla, static_cast<std::size_t>(rows * H_mla)},
                                 {}};
  };
  const dsa::gpu::DsaDecodeStepPlan plan = dsa::gpu::plan_dsa_decode_step(params(0));
  std::uint8_t* ws = device_alloc<std::uint8_t>(static_cast<std::size_t>(sets * plan.workspace_bytes));
  auto workspace = [&](int set) { return dsa::gpu::DeviceWorkspace{ws + set * plan.workspace_bytes, plan.workspace_bytes}; };

  // Every set once, eagerly: the indices the attention-only graph reads.
  for (int set = 0; set < sets; ++set) dsa::gpu::dsa_decode_step(params(set), outputs(set), plan, workspace(set), s);
  DSA_GPU_CHECK(cudaStreamSynchronize(s));

  // The stages as the step launches them (gpu/dsa_decode_step.cpp), over the step's buffers.
  auto stage = [&](int which, int set) {
    const dsa::gpu::DsaDecodeStepParams p = params(set);
    const dsa::gpu::DsaDecodeStepBuffers b = dsa::gpu::dsa_decode_step_buffers(plan, workspace(set));
    if (which == 0) {
      dsa::gpu::PagedMqaLogitsParams x = p.indexer;
      x.logits = b.logits;
      x.logits_row_stride = plan.logits_row_stride;
      x.status = b.status;
      dsa::gpu::paged_mqa_logits(x, s);
    } else if (which == 1) {
      dsa::gpu::TopkParams t;
      t.logits = b.logits;
      t.rows = rows;
      t.row_stride = plan.logits_row_stride;
      t.width = ctx;
      t.k = topk;
      t.context_lens = d_ctx;
      t.next_n = N;
      t.indices = b.indices;
      dsa::gpu::topk_indices(t, s);
    } else if (which == 2) {
      dsa::SparseMlaDecodeParams m = p.mla;
      m.index_mode = dsa::IndexMode::logical;
      m.indices = {b.indices, static_cast<std::size_t>(rows * topk)};
      m.topk = topk;
      dsa::gpu::sparse_mla_decode(m, outputs(set), plan.mla, b.mla, s);
    } else {
      dsa::gpu::dsa_decode_step(p, outputs(set), plan, workspace(set), s);
    }
  };
  DsaStepResult r;
  r.splits = plan.mla.num_splits;
  r.sets = sets;
  double* slots[] = {&r.logits_us, &r.topk_us, &r.mla_us, &r.step_us};
  for (int which = 0; which < 4; ++which)
    *slots[which] = us_per_call(s, sets, [&](int i) { stage(which, i % sets); });
  for (int set = 0; set < sets; ++set) {
    std::int32_t st = -1;
    DSA_GPU_CHECK(cudaMemcpy(&st, dsa::gpu::dsa_decode_step_buffers(plan, workspace(set)).status, 4, cudaMemcpyDeviceToHost));
    if (st != 0) std::printf("WARNING: set %d status %d\n", set, st);
  }
  for (void* p : {static_cast<void*>(kcache), static_cast<void*>(mcache), static_cast<void*>(d_table),
                  static_cast<void*>(d_ctx), static_cast<void*>(q_idx), static_cast<void*>(w), static_cast<void*>(q_mla),
                  static_cast<void*>(out), static_cast<void*>(lse), static_cast<void*>(ws)})
    DSA_GPU_CHECK(cudaFree(p));
  return r;
}

void dsa_step_table(bool quick, std::int64_t l2_bytes, cudaStream_t s) {
  dsa::gpu::dsa_decode_step_warmup(s);
  std::printf("\nDSA decode step (SPEC §6.5): paged_mqa_logits (H 64, std P64) -> topk 2048 -> fused sparse MLA "
              "decode (V32 P64, H 128, logical); next_n 1; us = median per step (graph replay)\n");
  std::printf("%5s %7s | %9s %9s %9s | %9s %9s %6s | %6s %4s\n", "B", "ctx", "logits", "topk", "mla", "sum", "step",
              "step/sum", "splits", "sets");
  const std::int64_t batches_full[] = {1, 16, 64, 128}, batches_quick[] = {1, 64};
  const std::vector<std::int64_t> batches(quick ? std::begin(batches_quick) : std::begin(batches_full),
                                          quick ? std::end(batches_quick) : std::end(batches_full));
  for (const std::int64_t B : batches)
    for (const std::int64_t ctx : {8192, 32768}) {
      const DsaStepResult r = run_dsa_step(B, ctx, l2_bytes, s);
      const double sum = r.logits_us + r.topk_us + r.mla_us;
      std::printf("%5lld %7lld | %9.1f %9.1f %9.1f | %9.1f %9.1f %6.3f | %6d %4d\n", static_cast<long long>(B),
                  static_cast<long long>(ctx), r.logits_us, r.topk_us, r.mla_us, sum, r.step_us, r.step_us / sum,
                  r.splits, r.sets);
      std::fflush(stdout);
    }
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
  bool dsa_step_only = false, dsa_quick = false;
  for (int i = 1; i < argc; ++i) {
    dsa_step_only = dsa_step_only || std::strcmp(argv[i], "--dsa-step") == 0;
    dsa_quick = dsa_quick || std::strcmp(argv[i], "--quick") == 0;
  }
  if (dsa_step_only) {
    dsa_step_table(dsa_quick, l2, s);
    DSA_GPU_CHECK(cudaStreamDestroy(s));
    return 0;
  }
  // SPEC §7: this process's first logits call (after warmup()) against steady-state calls.
  run_shape({IndexKLayout::standard, 64, 64, 8192, 1}, l2, s, false, true, false);

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
  std::printf("\npaged_mqa_logits, H = 64, D = 128, e4m3fn; us = median per call (graph replays of >= %.0f us of "
              "calls); %% = GB/s / copy; floor = a plain streaming pass over the same bytes, timed the same way\n",
              kGraphWorkUs);
  std::printf("%5s %7s %2s | %23s | %23s | %23s | %9s | %16s\n", "B", "ctx", "N", "std P64: us GB/s %",
              "pre P64: us GB/s %", "std P1: us GB/s %", "topk us", "floor us (%copy)");
  for (std::int64_t N : {1, 2})
    for (std::int64_t B : batches)
      for (std::int64_t ctx : ctxs) {
        std::printf("%5lld %7lld %2lld |", static_cast<long long>(B), static_cast<long long>(ctx),
                    static_cast<long long>(N));
        double topk_us = 0, floor_us = 0, floor_bytes = 0;
        for (const Variant& v : variants) {
          const bool first = v.page == 64 && v.layout == IndexKLayout::standard;
          const Result r = run_shape({v.layout, v.page, B, ctx, N}, l2, s, first, false, first);
          if (first) topk_us = r.topk_us, floor_us = r.floor_us, floor_bytes = r.bytes;
          const double gbs = r.bytes / (r.us * 1e-6) / 1e9;
          std::printf(" %8.1f %7.0f %5.1f%% |", r.us, gbs, 100.0 * gbs * 1e9 / copy);
          std::fflush(stdout);
        }
        std::printf(" %9.1f | %8.1f %5.1f%%\n", topk_us, floor_us, 100.0 * floor_bytes / (floor_us * 1e-6) / copy);
      }
  dsa_step_table(dsa_quick, l2, s);
  DSA_GPU_CHECK(cudaStreamDestroy(s));
  return 0;
}
