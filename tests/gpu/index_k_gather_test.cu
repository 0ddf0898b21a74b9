// gather_index_k on the GPU (gpu/index_k_gather.cu) against dsa::gather_index_k: byte for byte,
// both layouts and fp8 formats, aliasing block tables with garbage in unused entries, padded
// page strides, NaN-poisoned unreferenced tokens, sentinel-filled outputs larger than needed,
// exact-sized device buffers; bad tables leave the outputs untouched and name the argument.
// The kernel bodies also run on the host (no device needed).
#include "gpu_test_util.hpp"
#include "index_k_gather_kernel.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/error.hpp"
#include "dsa/gpu/index_k_gather.hpp"
#include "dsa/layouts.hpp"
#include "dsa/quantize.hpp"

namespace {

using dsa::Fp8Format;
using dsa::IndexKLayout;
using dsa::gpu::IndexKGatherParams;
using namespace dsa::gpu::testing;

struct Problem {
  std::string label;
  dsa::IndexKGeometry geo;
  std::vector<std::uint8_t> cache;  // exactly geo.bytes()
  std::int64_t batch = 0, max_blocks = 0;
  std::vector<std::int32_t> block_table, seq_lens;
  std::int64_t total = 0;   // Σ seq_lens
  std::int64_t spare = 0;   // output rows beyond the total, which must stay untouched
  std::vector<std::uint8_t> expected_codes;  // [total][D] from dsa::gather_index_k
  std::vector<float> expected_scales;        // [total]
  std::int32_t expected_status = 0;
  std::string expected_argument;             // of the error, when expected_status != 0
};

enum class Breakage { none, seq_len, block_table, output_too_small };

Problem make_problem(IndexKLayout layout, Fp8Format fp8, std::uint64_t seed, Breakage breakage = Breakage::none) {
  Rng rng(seed);
  Problem p;
  const bool pre = layout == IndexKLayout::preshuffle;
  const std::int32_t P = pre ? std::vector<std::int32_t>{16, 32, 64}[uniform(rng, 0, 2)]
                             : std::vector<std::int32_t>{1, 3, 16, 64}[uniform(rng, 0, 3)];
  const std::int32_t D = pre ? std::vector<std::int32_t>{16, 32, 128}[uniform(rng, 0, 2)]
                             : std::vector<std::int32_t>{1, 7, 32, 128}[uniform(rng, 0, 3)];
  const std::int64_t num_blocks = uniform(rng, 1, 8);
  p.geo = dsa::IndexKGeometry::packed(layout, fp8, num_blocks, P, D);
  p.geo.block_stride_bytes += 4 * uniform(rng, 0, 3);
  dsa::IndexKCacheBuffer buffer(p.geo);
  p.cache = std::move(buffer.bytes);
  fill_random_bytes(p.cache, rng);

  p.batch = uniform(rng, 1, 5);
  p.max_blocks = uniform(rng, 1, 6);
  p.block_table.resize(static_cast<std::size_t>(p.batch * p.max_blocks));
  const std::int32_t garbage[] = {-1, static_cast<std::int32_t>(num_blocks), INT_MIN, INT_MAX};
  for (auto& e : p.block_table) e = garbage[uniform(rng, 0, 3)];  // unused entries: never read
  std::set<std::pair<std::int64_t, std::int64_t>> referenced;
  for (std::int64_t b = 0; b < p.batch; ++b) {
    const std::int64_t cap = p.max_blocks * P;
    const std::int64_t len = uniform(rng, 0, 4) == 0 ? (uniform(rng, 0, 1) ? 0 : cap) : uniform(rng, 0, cap);
    p.seq_lens.push_back(static_cast<std::int32_t>(len));
    p.total += len;
    for (std::int64_t pg = 0; pg < (len + P - 1) / P; ++pg) {
      const auto blk = static_cast<std::int32_t>(uniform(rng, 0, num_blocks - 1));  // aliasing allowed
      p.block_table[b * p.max_blocks + pg] = blk;
      for (std::int64_t t = 0; t < P && pg * P + t < len; ++t) referenced.insert({blk, t});
    }
  }
  // NaN-poison every token no sequence reads (its codes and its scale).
  for (std::int64_t blk = 0; blk < num_blocks; ++blk) {
    std::uint8_t* page = p.cache.data() + blk * p.geo.block_stride_bytes;
    for (std::int64_t t = 0; t < P; ++t) {
      if (referenced.count({blk, t})) continue;
      for (int d = 0; d < D; ++d) page[dsa::layout::IndexK::value_offset(layout, D, t, d)] = dsa::fp8_nan_code(fp8);
      dsa::store_f32(page + dsa::layout::IndexK::scale_offset(P, D, t), dsa::f32_from_bits(0x7FC00000u));
    }
  }
  p.spare = uniform(rng, 0, 3);
  switch (breakage) {
    case Breakage::none: break;
    case Breakage::seq_len: {
      const std::int32_t bad[] = {-1, static_cast<std::int32_t>(p.max_blocks * P + 1), INT_MIN, INT_MAX};
      p.seq_lens[uniform(rng, 0, p.batch - 1)] = bad[uniform(rng, 0, 3)];
      p.expected_status = dsa::gpu::kIndexKBadSeqLen;
      p.expected_argument = "seq_lens";
      break;
    }
    case Breakage::block_table: {
      p.seq_lens[0] = static_cast<std::int32_t>(p.max_blocks * P);  // every entry of row 0 is used
      p.block_table[uniform(rng, 0, p.max_blocks - 1)] = garbage[uniform(rng, 0, 3)];
      p.expected_status = dsa::gpu::kIndexKBadBlockTable;
      p.expected_argument = "block_table";
      break;
    }
    case Breakage::output_too_small:
      if (p.total == 0) {
        p.seq_lens[0] = 1;
        p.block_table[0] = 0;
      }
      p.spare = -1;
      p.expected_status = dsa::gpu::kIndexKOutputTooSmall;
      p.expected_argument = "out_tokens";
      break;
  }
  p.total = 0;  // Σ seq_lens as the total check counts them: each clamped to [0, max_blocks·P]
  for (const std::int32_t len : p.seq_lens) p.total += std::clamp<std::int64_t>(len, 0, p.max_blocks * P);
  p.label = std::string(dsa::to_string(layout)) + "/" + dsa::to_string(fp8) + " P " + std::to_string(P) + " D " +
            std::to_string(D) + " seed " + std::to_string(seed);
  if (breakage == Breakage::none) {
    p.expected_codes.resize(static_cast<std::size_t>(p.total * D));
    p.expected_scales.resize(static_cast<std::size_t>(p.total));
    dsa::gather_index_k(dsa::IndexKCacheView{p.geo, p.cache}, p.block_table, p.batch, p.max_blocks, p.seq_lens,
                        p.expected_codes, p.expected_scales);
  }
  return p;
}

std::vector<Problem> all_problems(Breakage breakage = Breakage::none) {
  std::vector<Problem> out;
  std::uint64_t seed = 5000 + 100 * static_cast<int>(breakage);
  for (IndexKLayout layout : {IndexKLayout::standard, IndexKLayout::preshuffle})
    for (Fp8Format fp8 : {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz})
      for (int rep = 0; rep < 4; ++rep) out.push_back(make_problem(layout, fp8, seed++, breakage));
  return out;
}

std::int64_t out_rows(const Problem& p) { return p.total + p.spare; }

// The outputs as they must look: the reference's rows, then the sentinel; all sentinel on error.
void expect_outputs(const Problem& p, const std::vector<std::uint8_t>& codes, const std::vector<float>& scales,
                    std::uint8_t sentinel) {
  const std::int64_t D = p.geo.head_dim;
  std::vector<std::uint8_t> want_codes(static_cast<std::size_t>(out_rows(p) * D), sentinel);
  std::vector<float> want_scales(static_cast<std::size_t>(out_rows(p)));
  std::memset(want_scales.data(), sentinel, want_scales.size() * sizeof(float));
  if (p.expected_status == 0) {
    std::copy(p.expected_codes.begin(), p.expected_codes.end(), want_codes.begin());
    std::copy(p.expected_scales.begin(), p.expected_scales.end(), want_scales.begin());
  }
  const std::int64_t ci = first_difference(want_codes, codes);
  if (ci >= 0)
    ADD_FAILURE() << p.label << ": out_codes differ first at token " << ci / D << " dim " << ci % D << ": expected "
                  << int(want_codes[ci]) << ", got " << int(codes[ci]);
  const std::int64_t si = first_difference(want_scales, scales);
  if (si >= 0)
    ADD_FAILURE() << p.label << ": out_scales differ first at token " << si << ": expected bits " << std::hex
                  << dsa::f32_bits(want_scales[si]) << ", got " << dsa::f32_bits(scales[si]);
}

IndexKGatherParams params_for(const Problem& p, const std::uint8_t* cache, const std::int32_t* bt,
                              const std::int32_t* lens, std::uint8_t* codes, float* scales, std::int32_t* status) {
  IndexKGatherParams a;
  a.cache = p.geo;
  a.cache_bytes = cache;
  a.batch = p.batch;
  a.max_blocks = p.max_blocks;
  a.block_table = bt;
  a.seq_lens = lens;
  a.out_tokens = out_rows(p);
  a.out_codes = codes;
  a.out_scales = scales;
  a.status = status;
  return a;
}

// ------------------------------------------------------------------------------------------------
// The kernels' bodies on the CPU: the checks over every item, then the copy of every page.
template <IndexKLayout L>
void run_on_host(const IndexKGatherParams& a) {
  std::int32_t bits = 0;
  for (std::int64_t i = 0; i < a.batch * (a.max_blocks + 1); ++i) bits |= dsa::gpu::detail::index_k_check_item(a, i);
  std::int64_t total = 0;
  for (std::int64_t b = 0; b < a.batch; ++b)
    total += dsa::gpu::detail::index_k_clamped_len(a.seq_lens[b], a.max_blocks * a.cache.page_tokens);
  if (total > a.out_tokens) bits |= dsa::gpu::kIndexKOutputTooSmall;
  *a.status = bits;
  if (bits != 0) return;
  std::int64_t row0 = 0;
  for (std::int64_t b = 0; b < a.batch; ++b) {
    for (std::int64_t pg = 0; pg < dsa::gpu::detail::index_k_pages(a.seq_lens[b], a.cache.page_tokens); ++pg)
      dsa::gpu::detail::index_k_copy_page<L>(a, b, pg, row0, a.seq_lens[b], 0, 1);
    row0 += a.seq_lens[b];
  }
}

void run_problems_on_host(Breakage breakage) {
  for (const Problem& p : all_problems(breakage)) {
    SCOPED_TRACE(p.label);
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(std::max<std::int64_t>(out_rows(p), 0) * p.geo.head_dim), 0xA5);
    std::vector<float> scales(static_cast<std::size_t>(std::max<std::int64_t>(out_rows(p), 0)));
    std::memset(scales.data(), 0xA5, scales.size() * sizeof(float));
    std::int32_t status = -1;
    const auto a = params_for(p, p.cache.data(), p.block_table.data(), p.seq_lens.data(), codes.data(), scales.data(), &status);
    ASSERT_NO_THROW(dsa::gpu::validate(a));
    if (p.geo.layout == IndexKLayout::standard) run_on_host<IndexKLayout::standard>(a);
    else run_on_host<IndexKLayout::preshuffle>(a);
    EXPECT_EQ(status, p.expected_status);
    expect_outputs(p, codes, scales, 0xA5);
  }
}

TEST(IndexKGatherHostEmulation, KernelBodiesMatchGatherIndexK) { run_problems_on_host(Breakage::none); }

TEST(IndexKGatherHostEmulation, BadTablesAreCaughtBeforeAnyWrite) {
  run_problems_on_host(Breakage::seq_len);
  run_problems_on_host(Breakage::block_table);
  run_problems_on_host(Breakage::output_too_small);
}

// ------------------------------------------------------------------------------------------------
class IndexKGatherGpu : public GpuTest {
 protected:
  // Runs the GPU gather over sentinel-filled outputs; returns the status it reported.
  static std::int32_t run(const Problem& p, std::uint8_t sentinel, dsa::gpu::Stream stream = nullptr) {
    DeviceBuffer<std::uint8_t> cache(p.cache);
    DeviceBuffer<std::int32_t> bt(p.block_table), lens(p.seq_lens);
    const auto rows = static_cast<std::size_t>(std::max<std::int64_t>(out_rows(p), 0));
    DeviceBuffer<std::uint8_t> codes(rows * p.geo.head_dim);
    DeviceBuffer<float> scales(rows);
    DeviceBuffer<std::int32_t> status(1);
    codes.fill_bytes(sentinel);
    scales.fill_bytes(sentinel);
    status.fill_bytes(0x7B);
    dsa::gpu::gather_index_k(params_for(p, cache.get(), bt.get(), lens.get(), codes.get(), scales.get(), status.get()),
                             stream);
    DSA_GPU_CHECK(cudaDeviceSynchronize());
    expect_outputs(p, codes.download(), scales.download(), sentinel);
    return status.download()[0];
  }
};

TEST_F(IndexKGatherGpu, MatchesGatherIndexKByteForByte) {
  for (const Problem& p : all_problems()) {
    SCOPED_TRACE(p.label);
    EXPECT_EQ(run(p, 0xA5), 0);
    EXPECT_EQ(run(p, 0x3C), 0);  // determinism over another sentinel
  }
}

TEST_F(IndexKGatherGpu, BadTablesLeaveOutputsUntouchedAndNameTheArgument) {
  for (Breakage br : {Breakage::seq_len, Breakage::block_table, Breakage::output_too_small}) {
    for (const Problem& p : all_problems(br)) {
      SCOPED_TRACE(p.label);
      const std::int32_t status = run(p, 0xA5);
      EXPECT_EQ(status, p.expected_status);
      try {
        dsa::gpu::check_index_k_status(status);
        ADD_FAILURE() << "no error for status " << status;
      } catch (const dsa::InvalidArgument& e) {
        EXPECT_EQ(e.argument(), p.expected_argument) << e.what();
      }
    }
  }
}

TEST_F(IndexKGatherGpu, RunsOnAStream) {
  const Problem p = make_problem(IndexKLayout::preshuffle, Fp8Format::e4m3fnuz, 99);
  cudaStream_t stream;
  DSA_GPU_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  EXPECT_EQ(run(p, 0xA5, stream), 0);
  DSA_GPU_CHECK(cudaStreamDestroy(stream));
}

// ------------------------------------------------------------------------------------------------
// Host-side SPEC §8 checks: no device needed, nothing launched.
IndexKGatherParams valid_fake_params() {
  IndexKGatherParams a;
  a.cache = dsa::IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, 4, 64, 128);
  a.cache_bytes = fake_device_ptr<const std::uint8_t>();
  a.batch = 2;
  a.max_blocks = 3;
  a.block_table = fake_device_ptr<const std::int32_t>();
  a.seq_lens = fake_device_ptr<const std::int32_t>();
  a.out_tokens = 100;
  a.out_codes = fake_device_ptr<std::uint8_t>();
  a.out_scales = fake_device_ptr<float>();
  a.status = fake_device_ptr<std::int32_t>();
  return a;
}

void expect_argument(const IndexKGatherParams& a, const std::string& argument) {
  try {
    dsa::gpu::gather_index_k(a, nullptr);
    ADD_FAILURE() << "no error; expected one naming " << argument;
  } catch (const dsa::InvalidArgument& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
  }
}

TEST(IndexKGatherValidation, ErrorsNameTheArgument) {
  EXPECT_NO_THROW(dsa::gpu::validate(valid_fake_params()));
  auto a = valid_fake_params();
  a.cache.page_tokens = 0;
  expect_argument(a, "cache.page_tokens");
  a = valid_fake_params();
  a.cache.block_stride_bytes += 2;
  expect_argument(a, "cache.block_stride_bytes");
  a = valid_fake_params();
  a.batch = -1;
  expect_argument(a, "batch");
  a = valid_fake_params();
  a.max_blocks = -1;
  expect_argument(a, "max_blocks");
  a = valid_fake_params();
  a.out_tokens = -1;
  expect_argument(a, "out_tokens");
  a = valid_fake_params();
  a.status = nullptr;
  expect_argument(a, "status");
  a = valid_fake_params();
  a.seq_lens = nullptr;
  expect_argument(a, "seq_lens");
  a = valid_fake_params();
  a.block_table = nullptr;
  expect_argument(a, "block_table");
  a = valid_fake_params();
  a.cache_bytes = nullptr;
  expect_argument(a, "cache_bytes");
  a = valid_fake_params();
  a.out_codes = nullptr;
  expect_argument(a, "out_codes");
  a = valid_fake_params();
  a.out_scales = nullptr;
  expect_argument(a, "out_scales");
}

TEST(IndexKGatherValidation, KernelOfAnotherLayoutRefusesTheCache) {
  auto a = valid_fake_params();
  EXPECT_THROW(dsa::gpu::gather_index_k_as<IndexKLayout::preshuffle>(a, nullptr), dsa::LayoutMismatch);
  a.cache = dsa::IndexKGeometry::packed(IndexKLayout::preshuffle, Fp8Format::e4m3fnuz, 4, 64, 128);
  EXPECT_THROW(dsa::gpu::gather_index_k_as<IndexKLayout::standard>(a, nullptr), dsa::LayoutMismatch);
}

TEST(IndexKGatherValidation, StatusBitsBecomeTheReferenceErrors) {
  EXPECT_NO_THROW(dsa::gpu::check_index_k_status(0));
  // The CPU reference names the same arguments for the same tables.
  for (Breakage br : {Breakage::seq_len, Breakage::block_table}) {
    const Problem p = make_problem(IndexKLayout::standard, Fp8Format::e4m3fn, 42, br);
    std::vector<std::uint8_t> codes(static_cast<std::size_t>((p.total + 64 * 8) * p.geo.head_dim));
    std::vector<float> scales(static_cast<std::size_t>(p.total + 64 * 8));
    try {
      dsa::gather_index_k(dsa::IndexKCacheView{p.geo, p.cache}, p.block_table, p.batch, p.max_blocks, p.seq_lens,
                          codes, scales);
      ADD_FAILURE() << "the reference accepted a bad table";
    } catch (const dsa::InvalidArgument& e) {
      EXPECT_EQ(e.argument(), p.expected_argument);
    }
    try {
      dsa::gpu::check_index_k_status(p.expected_status);
      ADD_FAILURE() << "no error";
    } catch (const dsa::InvalidArgument& e) {
      EXPECT_EQ(e.argument(), p.expected_argument);
    }
  }
}

}  // namespace
