// Sparse MLA decode on the CPU: gold (fp64) and fast (fp32: fused, staged, auto split) timed on
// this machine for B ∈ {1, 8, 64}, S_q ∈ {1, 2}, H = 128, topk ∈ {512, 2048}, V32 and MODEL1, with
// the machine's Eigen fp32 GEMM rate measured in the same run as the ceiling.
// FLOPs per call = B·S_q·H·topk·(2·D_qk + 2·D_v). Medians over repeated runs.
//   sparse_mla_bench [--quick] [--no-gold] [--filter V32|MODEL1] [--reps N]
#include <fmt/format.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/quantize.hpp"
#include "dsa/sparse_mla.hpp"

namespace {

using namespace dsa;
using Clock = std::chrono::steady_clock;

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

struct Timing {
  double median_s, min_s;
};

// Median (and fastest) seconds of `fn` over `reps` runs after one warm-up, stopping early past
// `budget_s` once three runs are in.
Timing time_it(const std::function<void()>& fn, int reps, double budget_s) {
  fn();
  std::vector<double> t;
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (std::chrono::duration<double>(Clock::now() - start).count() > budget_s && t.size() >= 3) break;
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front()};
}

// Eigen fp32 GEMM rate of this machine with every OpenMP thread (Eigen parallelizes the product).
double gemm_gflops(int n, int reps) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat a = Mat::Random(n, n), b = Mat::Random(n, n), c(n, n);
  const double s = time_it([&] { c.noalias() = a * b; }, reps, 5.0).median_s;
  return 2.0 * n * n * n / s / 1e9;
}

struct Shape {
  MlaLayout layout;
  std::int64_t B, S_q;
  std::int32_t H, topk;
};

struct Problem {
  MlaCacheBuffer cache;
  std::vector<std::int32_t> indices;
  std::vector<std::uint16_t> q;
  SparseMlaDecodeParams params;
  explicit Problem(const Shape& s)
      : cache(MlaCacheGeometry::packed(s.layout, Fp8Format::e4m3fn,
                                       std::max<std::int64_t>(4 * s.topk, 16384) / 64, 64)) {
    const std::int64_t n = cache.geo.capacity_tokens();
    const int D = cache.geo.dim_qk();
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> rows(static_cast<std::size_t>(n * D));
    for (auto& v : rows) v = u(rng);
    std::vector<std::int64_t> slots(static_cast<std::size_t>(n));
    std::iota(slots.begin(), slots.end(), 0);
    quantize_kv(rows, n, D, slots, cache.span());
    // Each row selects topk distinct tokens of the pool.
    std::vector<std::int32_t> pool(static_cast<std::size_t>(n));
    std::iota(pool.begin(), pool.end(), 0);
    for (std::int64_t r = 0; r < s.B * s.S_q; ++r) {
      for (std::int32_t j = 0; j < s.topk; ++j)
        std::swap(pool[static_cast<std::size_t>(j)], pool[static_cast<std::size_t>(j + rng() % (n - j))]);
      indices.insert(indices.end(), pool.begin(), pool.begin() + s.topk);
    }
    q.resize(static_cast<std::size_t>(s.B * s.S_q * s.H * D));
    for (auto& v : q) v = f32_to_bf16(u(rng));
    params.q = q;
    params.B = s.B;
    params.S_q = s.S_q;
    params.H = s.H;
    params.cache = cache.view();
    params.indices = indices;
    params.topk = s.topk;
  }
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, gold = true;
  int reps = 7;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--no-gold")) gold = false;
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else {
      fmt::print(stderr, "usage: {} [--quick] [--no-gold] [--filter V32|MODEL1] [--reps N]\n", argv[0]);
      return 2;
    }
  }
  const int threads = omp_get_max_threads();
  fmt::print("machine: {} — {} OpenMP threads; Eigen {}.{}.{}, SIMD: {}; load average at start: {}\n",
             cpu_model(), threads, EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION,
             Eigen::SimdInstructionSetsInUse(), load_average());
  const double gemm = gemm_gflops(2048, reps);
  fmt::print("Eigen fp32 GEMM 2048³, {} threads: {:.1f} GFLOP/s (the ceiling for the ratios below)\n\n", threads, gemm);

  std::vector<Shape> shapes;
  for (MlaLayout layout : {MlaLayout::V32, MlaLayout::MODEL1})
    for (std::int64_t B : {1, 8, 64})
      for (std::int64_t S_q : {1, 2})
        for (std::int32_t topk : {512, 2048}) {
          if (!filter.empty() && filter != to_string(layout)) continue;
          if (quick && (B == 8 || S_q == 2)) continue;
          shapes.push_back({layout, B, S_q, 128, topk});
        }

  fmt::print("| layout | B | S_q | topk | variant | splits | median ms | min ms | GFLOP/s (median) | / GEMM |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Shape& s : shapes) {
    Problem pb(s);
    const int D = pb.cache.geo.dim_qk();
    const double flops = static_cast<double>(s.B * s.S_q) * s.H * s.topk * (2.0 * D + 2.0 * 512);
    std::vector<std::uint16_t> out(static_cast<std::size_t>(s.B * s.S_q * s.H * 512));
    std::vector<float> lse(static_cast<std::size_t>(s.B * s.S_q * s.H));
    const SparseMlaOutputs o{out, lse, {}};
    auto row = [&](const char* variant, int splits, Timing t) {
      const double gf = flops / t.median_s / 1e9;
      fmt::print("| {} | {} | {} | {} | {} | {} | {:.2f} | {:.2f} | {:.1f} | {:.1f} % |\n", to_string(s.layout), s.B,
                 s.S_q, s.topk, variant, splits, t.median_s * 1e3, t.min_s * 1e3, gf, 100.0 * gf / gemm);
      std::fflush(stdout);
    };
    const int auto_splits = choose_cpu_num_splits(s.B * s.S_q, s.H, s.topk, threads);
    row("fast fused", auto_splits,
        time_it([&] { sparse_mla_decode_fast(pb.params, o, {MlaFastAlgo::fused, 0}); }, reps, 10.0));
    if (auto_splits != 1)
      row("fast fused", 1,
          time_it([&] { sparse_mla_decode_fast(pb.params, o, {MlaFastAlgo::fused, 1}); }, reps, 10.0));
    row("fast staged", auto_splits,
        time_it([&] { sparse_mla_decode_fast(pb.params, o, {MlaFastAlgo::staged, 0}); }, reps, 10.0));
    if (gold) row("gold fp64", 0, time_it([&] { sparse_mla_decode_gold(pb.params, o); }, 5, 10.0));
  }
  return 0;
}
