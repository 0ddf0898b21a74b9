// Lightning-indexer CPU benchmark: fast (and, on the small shapes, gold) paged_mqa_logits for
// standard and preshuffle caches, and topk_indices at k = 2048. Prints the machine, the Eigen
// fp32 GEMM rate measured in the same run, and per shape the median time, GB/s, GFLOP/s and the
// ratio to the GEMM rate.
//
//   indexer_bench [--quick]     (--quick: B = 1 and 16 only, for a smoke run)
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/topk.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Median wall time of `repeats` runs after one warm-up run.
double median_seconds(int repeats, const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

// Eigen fp32 GEMM rate with every thread multiplying its own matrices (the way the fast path
// uses Eigen: one single-threaded GEMM per OpenMP task). Returns GFLOP/s.
double gemm_gflops(int m, int n, int k, double min_seconds) {
  const int threads = omp_get_max_threads();
  std::vector<double> rates(static_cast<std::size_t>(threads));
#pragma omp parallel
  {
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(m, k), b = Eigen::MatrixXf::Random(k, n), c(m, n);
    c.noalias() = a * b;  // warm
#pragma omp barrier
    const auto t0 = Clock::now();
    long iters = 0;
    do {
      c.noalias() = a * b;
      ++iters;
    } while (seconds_since(t0) < min_seconds);
    rates[static_cast<std::size_t>(omp_get_thread_num())] = 2.0 * m * n * k * static_cast<double>(iters) / seconds_since(t0);
    if (c(0, 0) == 12345.0f) std::puts("");  // keep the product alive
  }
  return std::accumulate(rates.begin(), rates.end(), 0.0) / 1e9;
}

// One benchmark problem: random finite fp8 codes and scales, shuffled block table, 1-D lengths
// ctx for every sequence, max_ctx = ctx.
struct Problem {
  std::int64_t B, N, H, D = 128, ctx;
  std::int32_t P = 64;
  std::vector<std::uint8_t> q;
  std::vector<float> w, logits;
  std::vector<std::int32_t> ctx_lens, table;
  std::int64_t max_blocks;
  dsa::IndexKCacheBuffer standard, preshuffle;

  static dsa::IndexKGeometry geo(dsa::IndexKLayout l, std::int64_t B, std::int64_t ctx) {
    return dsa::IndexKGeometry::packed(l, dsa::Fp8Format::e4m3fn, B * ((ctx + 63) / 64), 64, 128);
  }
  Problem(std::int64_t b, std::int64_t n, std::int64_t c, std::int64_t h = 64)
      : B(b), N(n), H(h), ctx(c), standard(geo(dsa::IndexKLayout::standard, b, c)),
        preshuffle(geo(dsa::IndexKLayout::preshuffle, b, c)) {
    std::mt19937_64 rng(42);
    auto code = [&] {
      auto x = static_cast<std::uint8_t>(rng());
      return (x & 0x7F) == 0x7F ? static_cast<std::uint8_t>(x ^ 1) : x;  // no NaN codes
    };
    auto fill_codes = [&](std::vector<std::uint8_t>& bytes, const dsa::IndexKGeometry& g) {
      for (std::int64_t blk = 0; blk < g.num_blocks; ++blk) {
        std::uint8_t* page = bytes.data() + blk * g.block_stride_bytes;
        for (std::int64_t i = 0; i < g.page_tokens * g.head_dim; ++i) page[i] = code();
        for (std::int64_t t = 0; t < g.page_tokens; ++t)
          dsa::store_f32(page + dsa::layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t),
                         1e-3f * (1.0f + static_cast<float>(rng() % 1000) / 1000.0f));
      }
    };
    fill_codes(standard.bytes, standard.geo);
    fill_codes(preshuffle.bytes, preshuffle.geo);
    q.resize(static_cast<std::size_t>(B * N * H * D));
    for (auto& x : q) x = code();
    w.resize(static_cast<std::size_t>(B * N * H));
    for (auto& x : w) x = static_cast<float>(static_cast<std::int64_t>(rng() % 2001) - 1000) / 1000.0f;
    ctx_lens.assign(static_cast<std::size_t>(B), static_cast<std::int32_t>(ctx));
    max_blocks = (ctx + P - 1) / P;
    table.resize(static_cast<std::size_t>(B * max_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
    logits.assign(static_cast<std::size_t>(B * N * ctx), 0.0f);
  }
  dsa::PagedMqaLogitsParams params(dsa::IndexKLayout l) {
    dsa::PagedMqaLogitsParams p;
    p.batch = B;
    p.next_n = N;
    p.num_heads = H;
    p.head_dim = D;
    p.q = q;
    p.weights = w;
    p.context_lens = ctx_lens;
    p.block_table = table;
    p.max_blocks = max_blocks;
    p.cache = l == dsa::IndexKLayout::standard ? standard.view() : preshuffle.view();
    p.reader_layout = l;
    p.max_ctx = ctx;
    p.logits = logits;
    p.logits_row_stride = ctx;
    return p;
  }
  double bytes() const {  // K cache read + q + weights + logits written
    return static_cast<double>(B * ctx * (D + 4) + B * N * H * D + B * N * H * 4 + B * N * ctx * 4);
  }
  double flops() const {  // dot products + weighted head sum
    return 2.0 * static_cast<double>(B * N * H * ctx) * static_cast<double>(D) + 2.0 * static_cast<double>(B * N * H * ctx);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const auto start = Clock::now();
  fmt::print("# indexer_bench — paged_mqa_logits (H = 64, D = 128, page 64, e4m3fn, 1-D lengths) and top-k\n");
  fmt::print("machine: {}, {} OpenMP threads\n", cpu_model(), omp_get_max_threads());
  const double gemm_big = gemm_gflops(512, 512, 512, 1.0);
  const double gemm_tile = gemm_gflops(256, 64, 128, 1.0);  // the fast path's GEMM at N = 1
  fmt::print("Eigen fp32 GEMM, all threads: {:.1f} GFLOP/s at 512³ (the reference rate); {:.1f} GFLOP/s at the "
             "fast path's tile shape 256×64×128\n\n",
             gemm_big, gemm_tile);

  fmt::print("| impl | layout | B | N | ctx | time ms | GB/s | GFLOP/s | of GEMM 512³ | top-k k=2048 ms |\n");
  fmt::print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const std::vector<std::int64_t> batches = quick ? std::vector<std::int64_t>{1, 16} : std::vector<std::int64_t>{1, 16, 64};
  for (std::int64_t B : batches)
    for (std::int64_t ctx : {8192, 32768})
      for (std::int64_t N : {1, 2}) {
        Problem pr(B, N, ctx);
        const int repeats = pr.flops() > 2e10 ? 3 : 5;
        for (auto layout : {dsa::IndexKLayout::standard, dsa::IndexKLayout::preshuffle}) {
          const auto p = pr.params(layout);
          const double t = median_seconds(repeats, [&] { dsa::fast::paged_mqa_logits(p); });
          std::string topk = "";
          if (layout == dsa::IndexKLayout::standard) {
            const auto ranges = dsa::visible_ranges(p);
            std::vector<std::int32_t> out(static_cast<std::size_t>(B * N * 2048));
            const double tk = median_seconds(repeats, [&] { dsa::topk_indices(pr.logits, B * N, ctx, ranges, 2048, out); });
            topk = fmt::format("{:.2f}", tk * 1e3);
          }
          fmt::print("| fast | {} | {} | {} | {} | {:.2f} | {:.1f} | {:.1f} | {:.0f}% | {} |\n", dsa::to_string(layout), B, N,
                     ctx, t * 1e3, pr.bytes() / t / 1e9, pr.flops() / t / 1e9, 100.0 * pr.flops() / t / 1e9 / gemm_big,
                     topk);
        }
        // gold (fp64 plain loops) is slow: B = 1 only, one run each, standard layout.
        if (B == 1) {
          const auto p = pr.params(dsa::IndexKLayout::standard);
          const auto t0 = Clock::now();
          dsa::gold::paged_mqa_logits(p);
          const double t = seconds_since(t0);
          fmt::print("| gold | standard | {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.1f}% | |\n", B, N, ctx, t * 1e3,
                     pr.bytes() / t / 1e9, pr.flops() / t / 1e9, 100.0 * pr.flops() / t / 1e9 / gemm_big);
        }
      }
  // What is not GEMM: the same K traffic and decode with one head (GEMM 64× smaller).
  {
    Problem pr(64, 1, 8192, 1);
    const auto p = pr.params(dsa::IndexKLayout::standard);
    const double t = median_seconds(5, [&] { dsa::fast::paged_mqa_logits(p); });
    fmt::print("\nnon-GEMM floor: fast, standard, B = 64, N = 1, ctx = 8192 with H = 1 (same K decode, GEMM 64× "
               "smaller): {:.2f} ms\n", t * 1e3);
  }
  fmt::print("\nfast: median of 5 runs (3 above 20 GFLOP) after a warm-up; gold: B = 1 only, one run, standard "
             "layout (fp64 plain loops).\nGB/s counts K cache read + q + weights + logits written; GFLOP counts "
             "2·B·N·H·D·ctx + 2·B·N·H·ctx (head sum).\ntotal bench time {:.1f} s\n",
             seconds_since(start));
  return 0;
}
