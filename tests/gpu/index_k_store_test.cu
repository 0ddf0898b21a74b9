// quantize_index_k on the GPU (gpu/index_k_store_kernel.cuh) against dsa::quantize_index_k byte for
// byte over the whole cache: both layouts and fp8 formats, fp32 and ue8m0 scales, fmax 0 or 224,
// page sizes 1..64 and head dims 16..128, padded page strides, slot mappings with −1 skips, rows
// of zeros, huge and tiny values, NaN elements; bytes no slot names keep their (random) contents.
// A bad slot writes nothing; a cache of the other layout is a LayoutMismatch naming both.
#include "gpu_test_util.hpp"
#include "indexer_gpu_cases.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/error.hpp"
#include "dsa/gpu/index_k_store.hpp"
#include "dsa/quantize.hpp"

namespace {

using dsa::Fp8Format;
using dsa::IndexKLayout;
using namespace dsa::gpu::testing;

struct StoreCase {
  std::string label;
  dsa::IndexKGeometry geo;
  std::vector<std::uint8_t> cache;  // initial contents (random bytes)
  std::int64_t n = 0;
  std::vector<float> k;
  std::vector<std::int64_t> slots;
  dsa::IndexKQuantParams params;
};

StoreCase make_case(std::uint64_t seed) {
  Rng rng(seed);
  StoreCase c;
  const IndexKLayout layout = seed % 2 ? IndexKLayout::preshuffle : IndexKLayout::standard;
  const Fp8Format fp8 = uniform(rng, 0, 3) == 0 ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn;
  const bool pre = layout == IndexKLayout::preshuffle;
  const std::int32_t P = pre ? std::vector<std::int32_t>{16, 32, 64}[uniform(rng, 0, 2)]
                             : std::vector<std::int32_t>{1, 5, 16, 64}[uniform(rng, 0, 3)];
  const std::int32_t D = pre ? std::vector<std::int32_t>{16, 64, 128}[uniform(rng, 0, 2)]
                             : std::vector<std::int32_t>{7, 32, 128, 128}[uniform(rng, 0, 3)];
  c.geo = dsa::IndexKGeometry::packed(layout, fp8, uniform(rng, 1, 6), P, D);
  c.geo.block_stride_bytes += 4 * uniform(rng, 0, 3);
  c.cache.resize(static_cast<std::size_t>(c.geo.bytes()));
  fill_random_bytes(c.cache, rng);
  const std::int64_t capacity = c.geo.capacity_tokens();
  c.n = uniform(rng, 0, std::min<std::int64_t>(capacity + 4, 200));
  // Distinct slots (a slot written twice has no specified winner), −1 sprinkled in.
  std::vector<std::int64_t> perm(static_cast<std::size_t>(capacity));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (std::int64_t i = 0; i < c.n; ++i)
    c.slots.push_back(i < capacity && uniform(rng, 0, 5) != 0 ? perm[i] : -1);
  c.k.resize(static_cast<std::size_t>(c.n * D));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::int64_t i = 0; i < c.n; ++i) {
    const int style = static_cast<int>(uniform(rng, 0, 9));
    const float mag = std::ldexp(1.0f, static_cast<int>(uniform(rng, -20, 20)));
    for (int d = 0; d < D; ++d) {
      float x = normal(rng) * mag;
      if (style == 0) x = 0.0f;                                      // all-zero row: the 1e-4 floor
      if (style == 1 && d % 7 == 0) x = -0.0f;
      if (style == 2 && d == 3) x = std::nanf("");                    // ignored by amax, NaN code
      if (style == 3 && d == 0) x = (uniform(rng, 0, 1) ? 1.0f : -1.0f) * 3.0e38f;  // huge
      c.k[i * D + d] = x;
    }
  }
  c.params.ue8m0_scale = uniform(rng, 0, 1) == 1;
  c.params.fmax = uniform(rng, 0, 4) == 0 ? (fp8 == Fp8Format::e4m3fn ? 224.0f : 200.0f) : 0.0f;
  c.label = std::string(dsa::to_string(layout)) + "/" + dsa::to_string(fp8) + " P=" + std::to_string(P) +
            " D=" + std::to_string(D) + " n=" + std::to_string(c.n) + (c.params.ue8m0_scale ? " ue8m0" : " fp32") +
            " fmax=" + std::to_string(c.params.fmax) + " seed " + std::to_string(seed);
  return c;
}

struct GpuResult {
  std::vector<std::uint8_t> cache;
  std::int32_t status = -1;
};

GpuResult run_gpu(const StoreCase& c, IndexKLayout writer) {
  DeviceBuffer<std::uint8_t> cache(c.cache);
  DeviceBuffer<float> k(c.k);
  DeviceBuffer<std::int64_t> slots(c.slots);
  DeviceBuffer<std::int32_t> status(1);
  dsa::gpu::IndexKStoreParams p;
  p.cache = c.geo;
  p.cache_bytes = cache.get();
  p.writer_layout = writer;
  p.n = c.n;
  p.k = k.get();
  p.slot_mapping = slots.get();
  p.ue8m0_scale = c.params.ue8m0_scale;
  p.fmax = c.params.fmax;
  p.status = status.get();
  dsa::gpu::quantize_index_k(p, nullptr);
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  return {cache.download(), status.download()[0]};
}

std::vector<std::uint8_t> expected_cache(const StoreCase& c) {
  std::vector<std::uint8_t> want = c.cache;
  dsa::quantize_index_k(c.k, c.n, c.slots, dsa::IndexKCacheSpan{c.geo, want}, c.params);
  return want;
}

class IndexKStoreGpu : public GpuTest {};

TEST_F(IndexKStoreGpu, BytesEqualTheCpuWriter) {
  int cases = 0;
  for (std::uint64_t seed = 0; seed < cases_to_run(2400); ++seed) {
    const StoreCase c = make_case(seed);
    const GpuResult g = run_gpu(c, c.geo.layout);
    ASSERT_EQ(g.status, 0) << c.label;
    const std::vector<std::uint8_t> want = expected_cache(c);
    const std::int64_t i = first_difference(want, g.cache);
    ASSERT_EQ(i, -1) << c.label << ": cache differs first at byte " << i << " (block "
                     << i / c.geo.block_stride_bytes << ", offset " << i % c.geo.block_stride_bytes << "): expected "
                     << int(want[i]) << ", got " << int(g.cache[i]);
    ++cases;
  }
  EXPECT_EQ(cases, static_cast<int>(cases_to_run(2400)));
}

TEST_F(IndexKStoreGpu, BadSlotWritesNothing) {
  for (std::uint64_t seed = 5000; seed < 5000 + cases_to_run(100); ++seed) {
    StoreCase c = make_case(seed);
    if (c.n == 0) continue;
    Rng rng(seed);
    const std::int64_t bad[] = {-2, c.geo.capacity_tokens(), INT64_MIN, INT64_MAX};
    c.slots[uniform(rng, 0, c.n - 1)] = bad[uniform(rng, 0, 3)];
    const GpuResult g = run_gpu(c, c.geo.layout);
    EXPECT_EQ(g.status, dsa::gpu::kIndexKStoreBadSlot) << c.label;
    EXPECT_EQ(first_difference(c.cache, g.cache), -1) << c.label << ": the cache was written";
    try {
      dsa::gpu::check_index_k_store_status(g.status);
      ADD_FAILURE() << "no error";
    } catch (const dsa::InvalidArgument& e) {
      EXPECT_EQ(e.argument(), "slot_mapping");
    }
  }
}

TEST(IndexKStoreGpuValidation, LayoutMismatchNamesBothLayouts) {
  dsa::gpu::IndexKStoreParams p;
  p.cache = dsa::IndexKGeometry::packed(IndexKLayout::preshuffle, Fp8Format::e4m3fn, 4, 64, 128);
  p.cache_bytes = fake_device_ptr<std::uint8_t>();
  p.writer_layout = IndexKLayout::standard;
  p.n = 1;
  p.k = fake_device_ptr<float>();
  p.slot_mapping = fake_device_ptr<std::int64_t>();
  p.status = fake_device_ptr<std::int32_t>();
  try {
    dsa::gpu::quantize_index_k(p, nullptr);
    ADD_FAILURE() << "a preshuffle cache was written as standard";
  } catch (const dsa::LayoutMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("preshuffle"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("standard"), std::string::npos) << e.what();
  }
  p.writer_layout = IndexKLayout::preshuffle;
  EXPECT_THROW(dsa::gpu::quantize_index_k_as<IndexKLayout::standard>(p, nullptr), dsa::LayoutMismatch);
  p.fmax = 500.0f;
  EXPECT_THROW(dsa::gpu::quantize_index_k(p, nullptr), dsa::InvalidArgument);
  p.fmax = 0.0f;
  p.status = nullptr;
  EXPECT_THROW(dsa::gpu::quantize_index_k(p, nullptr), dsa::InvalidArgument);
}

}  // namespace
