// Case generators shared by the GPU indexer suites (paged_mqa_logits, mqa_logits, topk): paged
// index K caches with realistic fp8 codes in the tokens that are read and NaN poison in every
// other token, aliasing block tables with garbage in unused entries, query codes and weights.
#pragma once

#include "gpu_test_util.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/formats.hpp"
#include "dsa/layouts.hpp"

namespace dsa::gpu::testing {

// How many of a property loop's n cases to run: all of them, or at most DSA_GPU_MAX_CASES (for
// runs under compute-sanitizer, where every launch is slow).
inline std::uint64_t cases_to_run(std::uint64_t n) {
  if (const char* e = std::getenv("DSA_GPU_MAX_CASES")) {
    const std::uint64_t cap = std::strtoull(e, nullptr, 10);
    return cap < n ? cap : n;
  }
  return n;
}

// A code of a value drawn like quantized activations: normal, times a power of two so that the
// codes span the format's binades (subnormals included), never NaN.
inline std::uint8_t random_fp8(Rng& rng, Fp8Format f, int min_exp = -6, int max_exp = 3) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  const float x = n(rng) * std::ldexp(1.0f, static_cast<int>(uniform(rng, min_exp, max_exp)));
  return f32_to_fp8(x, f, Overflow::saturate);
}

inline std::vector<std::uint8_t> random_fp8_vector(Rng& rng, std::size_t n, Fp8Format f) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = random_fp8(rng, f);
  return v;
}

inline std::vector<float> random_weights(Rng& rng, std::size_t n) {
  std::normal_distribution<float> w(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = w(rng);
  return v;
}

// A token's scale as an indexer writer stores it (amax / fmax of a random amax), or a power of two.
inline float random_k_scale(Rng& rng) {
  if (uniform(rng, 0, 3) == 0) return std::ldexp(1.0f, static_cast<int>(uniform(rng, -12, 0)));
  std::uniform_real_distribution<float> amax(0.05f, 20.0f);
  return amax(rng) / 448.0f;
}

// Fills the token (block, t) of a paged index K cache with random codes and a scale.
inline void fill_index_k_token(std::vector<std::uint8_t>& cache, const IndexKGeometry& g, std::int64_t block,
                               std::int64_t t, Rng& rng) {
  std::uint8_t* page = cache.data() + block * g.block_stride_bytes;
  for (int d = 0; d < g.head_dim; ++d)
    page[layout::IndexK::value_offset(g.layout, g.head_dim, t, d)] = random_fp8(rng, g.fp8);
  store_f32(page + layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t), random_k_scale(rng));
}

// NaN codes and a NaN scale in every token not in `read` ({block, t} pairs): a kernel that reads
// one of them where it must not turns a logit into NaN.
inline void poison_index_k_tokens(std::vector<std::uint8_t>& cache, const IndexKGeometry& g,
                                  const std::set<std::pair<std::int64_t, std::int64_t>>& read) {
  for (std::int64_t blk = 0; blk < g.num_blocks; ++blk) {
    std::uint8_t* page = cache.data() + blk * g.block_stride_bytes;
    for (std::int64_t t = 0; t < g.page_tokens; ++t) {
      if (read.count({blk, t})) continue;
      for (int d = 0; d < g.head_dim; ++d) page[layout::IndexK::value_offset(g.layout, g.head_dim, t, d)] = fp8_nan_code(g.fp8);
      store_f32(page + layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t), f32_from_bits(0x7FC00000u));
    }
  }
}

// A host buffer of n fp32 holding the sentinel bits.
inline std::vector<float> sentinel_floats(std::size_t n, std::uint32_t bits) {
  std::vector<float> v(n);
  for (auto& x : v) x = f32_from_bits(bits);
  return v;
}

}  // namespace dsa::gpu::testing
