// Staged sparse MLA gather (gpu/sparse_mla_gather.cu) against the CPU reader dsa::read_mla_token:
// byte for byte, on random caches of every layout and fp8 format, both index modes, extra caches,
// topk_length, every int32 edge index; unreferenced cache rows NaN-poisoned, outputs
// sentinel-filled, device buffers exactly sized. The kernel body also runs on the host (no
// device needed), and argument validation is checked without a device.
#include "gpu_test_util.hpp"
#include "sparse_mla_gather_kernel.cuh"

#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/error.hpp"
#include "dsa/formats.hpp"
#include "dsa/gpu/sparse_mla_gather.hpp"
#include "dsa/layouts.hpp"
#include "dsa/reader_model.hpp"
#include "dsa/sparse_mla.hpp"

namespace {

using dsa::Fp8Format;
using dsa::IndexMode;
using dsa::MlaLayout;
using dsa::gpu::GatherPart;
using dsa::gpu::MlaGatherSource;
using dsa::gpu::SparseMlaGatherParams;
using namespace dsa::gpu::testing;

struct CacheKind {
  MlaLayout layout;
  int bf16_dim_qk = 576;  // BF16 only
};

std::string name(const CacheKind& k) {
  return std::string(dsa::to_string(k.layout)) + (k.layout == MlaLayout::BF16 ? "-" + std::to_string(k.bf16_dim_qk) : "");
}

const CacheKind kAllKinds[] = {{MlaLayout::V32}, {MlaLayout::MODEL1}, {MlaLayout::MODEL1_SPLIT},
                               {MlaLayout::BF16, 576}, {MlaLayout::BF16, 512}};

// SPEC §3 restated independently of the code under test: the token an index names, if any.
std::optional<std::pair<std::int64_t, std::int64_t>> spec_token(std::int32_t index, IndexMode mode, std::int64_t P,
                                                                std::int64_t num_blocks, const std::int32_t* bt_row,
                                                                std::int64_t max_blocks) {
  const std::int64_t i = index;
  if (mode == IndexMode::physical) {
    if (0 <= i && i < num_blocks * P) return std::make_pair(i / P, i % P);
    return std::nullopt;
  }
  if (!(0 <= i && i < max_blocks * P)) return std::nullopt;
  const std::int64_t block = bt_row[i / P];
  if (!(0 <= block && block < num_blocks)) return std::nullopt;
  return std::make_pair(block, i % P);
}

// One cache with its selection, on the host.
struct HostSource {
  dsa::MlaCacheGeometry geo;
  std::vector<std::uint8_t> values, scales;  // exactly geo.values_bytes(), geo.scales_bytes()
  std::int32_t topk = 0;
  std::vector<std::int32_t> indices;      // [T][topk]
  std::vector<std::int32_t> topk_length;  // [B] or empty
  std::vector<std::int32_t> block_table;  // [B][max_blocks]
  std::int64_t max_blocks = 0;
  std::set<std::pair<std::int64_t, std::int64_t>> referenced;  // tokens some valid slot selects
  dsa::MlaCacheView view() const { return {geo, values, scales}; }
};

// A geometry with padded strides (bytes between pages that nothing may read).
dsa::MlaCacheGeometry make_geometry(const CacheKind& kind, Fp8Format fp8, std::int64_t num_blocks,
                                    std::int32_t page_tokens, Rng& rng) {
  auto g = dsa::MlaCacheGeometry::packed(kind.layout, fp8, num_blocks, page_tokens, kind.bf16_dim_qk);
  g.block_stride_bytes += uniform(rng, 0, 1) * uniform(rng, 1, 40);
  if (kind.layout == MlaLayout::MODEL1_SPLIT) g.scale_block_stride_bytes += uniform(rng, 0, 1) * uniform(rng, 1, 9);
  return g;
}

// The int32 edge values of an index whose valid range is [0, range).
std::vector<std::int32_t> edge_indices(std::int64_t range, std::int32_t P) {
  return {INT_MIN, INT_MIN + 1, -P, -2, -1, 0, static_cast<std::int32_t>(range - 1), static_cast<std::int32_t>(range),
          static_cast<std::int32_t>(range + 1), static_cast<std::int32_t>(range + P), INT_MAX - 1, INT_MAX};
}

HostSource make_source(const CacheKind& kind, Fp8Format fp8, IndexMode mode, std::int64_t B, std::int64_t S_q,
                       std::int32_t topk, bool with_lengths, Rng& rng) {
  const std::int32_t P = std::vector<std::int32_t>{1, 3, 16, 64}[uniform(rng, 0, 3)];
  const std::int64_t num_blocks = uniform(rng, 1, 6);
  HostSource s;
  dsa::MlaCacheBuffer buffer(make_geometry(kind, fp8, num_blocks, P, rng));  // validates, sizes exactly
  s.geo = buffer.geo;
  s.values = std::move(buffer.values);
  s.scales = std::move(buffer.scales);
  fill_random_bytes(s.values, rng);
  fill_random_bytes(s.scales, rng);
  s.topk = topk;
  if (mode == IndexMode::logical) {
    s.max_blocks = uniform(rng, 1, num_blocks + 2);
    s.block_table.resize(static_cast<std::size_t>(B * s.max_blocks));
    const std::int32_t bad[] = {-1, static_cast<std::int32_t>(num_blocks), INT_MIN, INT_MAX, -100};
    for (auto& e : s.block_table)  // aliasing entries and invalid ones
      e = uniform(rng, 0, 6) == 0 ? bad[uniform(rng, 0, 4)] : static_cast<std::int32_t>(uniform(rng, 0, num_blocks - 1));
  }
  const std::int64_t range = mode == IndexMode::physical ? num_blocks * P : s.max_blocks * P;
  const auto edges = edge_indices(range, P);
  s.indices.resize(static_cast<std::size_t>(B * S_q * topk));
  for (auto& i : s.indices)
    i = uniform(rng, 0, 9) < 7 ? static_cast<std::int32_t>(uniform(rng, 0, range - 1)) : edges[uniform(rng, 0, edges.size() - 1)];
  if (with_lengths) {
    const std::int32_t lens[] = {INT_MIN, -1, 0, 1, topk - 1, topk, topk + 1, INT_MAX};
    for (std::int64_t b = 0; b < B; ++b)
      s.topk_length.push_back(uniform(rng, 0, 2) == 0 ? lens[uniform(rng, 0, 7)] : static_cast<std::int32_t>(uniform(rng, 0, topk)));
  }
  return s;
}

std::optional<std::pair<std::int64_t, std::int64_t>> slot_token(const HostSource& s, IndexMode mode, std::int64_t S_q,
                                                                std::int64_t r, std::int64_t j) {
  const std::int64_t b = r / S_q;
  if (!s.topk_length.empty() && !(j < s.topk_length[b])) return std::nullopt;
  const std::int32_t* bt_row = mode == IndexMode::logical ? s.block_table.data() + b * s.max_blocks : nullptr;
  return spec_token(s.indices[r * s.topk + j], mode, s.geo.page_tokens, s.geo.num_blocks, bt_row,
                    s.max_blocks);
}

// Scales of referenced tokens get finite, non-power-of-two values most of the time (where the
// reader models differ); every byte of an unreferenced token becomes NaN (SPEC §10.4).
void shape_and_poison(HostSource& s, Rng& rng) {
  const auto& g = s.geo;
  std::uint8_t* values = s.values.data();
  std::uint8_t* scales = s.scales.data();
  const int dim = g.dim_qk();
  const std::uint8_t nan8 = dsa::fp8_nan_code(g.fp8);
  for (std::int64_t block = 0; block < g.num_blocks; ++block) {
    std::uint8_t* page = values + block * g.block_stride_bytes;
    for (std::int64_t t = 0; t < g.page_tokens; ++t) {
      const bool ref = s.referenced.count({block, t}) > 0;
      switch (g.layout) {
        case MlaLayout::V32:
          for (int k = 0; k < dsa::layout::V32::num_scales; ++k) {
            const float sc = ref ? (uniform(rng, 0, 9) == 0 ? dsa::f32_from_bits(static_cast<std::uint32_t>(rng()))
                                                             : std::ldexp(1.0f + uniform(rng, 0, 1 << 20) / float(1 << 20),
                                                                          static_cast<int>(uniform(rng, -20, 4))))
                                 : dsa::f32_from_bits(0x7FC00000u);
            dsa::store_f32(page + dsa::layout::V32::scale_offset(t, k), sc);
          }
          break;
        case MlaLayout::MODEL1:
        case MlaLayout::MODEL1_SPLIT:
          for (int k = 0; k < dsa::layout::Model1::num_scales; ++k) {
            const std::uint8_t code = ref ? static_cast<std::uint8_t>(uniform(rng, 0, 9) == 0 ? uniform(rng, 0, 255)
                                                                                              : uniform(rng, 107, 131))
                                          : std::uint8_t{0xFF};
            if (g.layout == MlaLayout::MODEL1)
              page[dsa::layout::Model1::scale_offset(g.page_tokens, t, k)] = code;
            else
              scales[block * g.scale_block_stride_bytes + dsa::layout::Model1Split::scale_offset(t, k)] = code;
          }
          break;
        case MlaLayout::BF16: break;
      }
      if (ref) continue;
      for (int d = 0; d < dim; ++d) {
        switch (g.layout) {
          case MlaLayout::V32:
            if (d < dsa::layout::V32::nope_dims) page[dsa::layout::V32::dim_offset(t, d)] = nan8;
            else dsa::store_u16(page + dsa::layout::V32::dim_offset(t, d), 0x7FC0);
            break;
          case MlaLayout::MODEL1:
          case MlaLayout::MODEL1_SPLIT:
            if (d < dsa::layout::Model1::nope_dims) page[dsa::layout::Model1::dim_offset(t, d)] = nan8;
            else dsa::store_u16(page + dsa::layout::Model1::dim_offset(t, d), 0x7FC0);
            break;
          case MlaLayout::BF16: dsa::store_u16(page + dsa::layout::Bf16::dim_offset(t, d, dim), 0x7FC0); break;
        }
      }
    }
  }
}

// A whole problem: both sources on the host, the expected outputs, and what the device holds.
struct Problem {
  std::string label;
  std::int64_t B = 0, S_q = 1;
  IndexMode mode = IndexMode::physical;
  dsa::ReaderModel model;
  HostSource primary, extra;
  bool has_extra = false;
  int dim = 0;
  std::int32_t K = 0;
  std::vector<std::uint16_t> expected_ws;
  std::vector<std::int32_t> expected_idx;
};

const dsa::ReaderModel kModels[] = {dsa::ReaderModel::staged_bf16(), dsa::ReaderModel::flashmla_sm90(),
                                    dsa::ReaderModel::flashmla_sm100(), dsa::ReaderModel::exact_fp32(),
                                    {dsa::ScaleAs::fp32, dsa::ProductAs::bf16, dsa::OperandAs::bf16}};

Problem make_problem(const CacheKind& kind, Fp8Format fp8, IndexMode mode, std::uint64_t seed) {
  Rng rng(seed);
  Problem p{};
  p.B = uniform(rng, 1, 3);
  p.S_q = uniform(rng, 1, 3);
  p.mode = mode;
  p.model = kModels[uniform(rng, 0, 4)];
  const std::int32_t topk = static_cast<std::int32_t>(uniform(rng, 1, 40));
  p.primary = make_source(kind, fp8, mode, p.B, p.S_q, topk, uniform(rng, 0, 1) == 1, rng);
  p.dim = p.primary.geo.dim_qk();
  p.has_extra = uniform(rng, 0, 1) == 1;
  CacheKind extra_kind = kind;
  if (p.has_extra) {  // another layout family of the same D_qk
    std::vector<CacheKind> same_dim;
    for (const auto& k : kAllKinds)
      if (dsa::mla_dim_qk(k.layout, k.bf16_dim_qk) == p.dim) same_dim.push_back(k);
    extra_kind = same_dim[uniform(rng, 0, same_dim.size() - 1)];
    const Fp8Format extra_fp8 = uniform(rng, 0, 1) ? Fp8Format::e4m3fn : Fp8Format::e4m3fnuz;
    p.extra = make_source(extra_kind, extra_fp8, mode, p.B, p.S_q, static_cast<std::int32_t>(uniform(rng, 1, 12)),
                          uniform(rng, 0, 1) == 1, rng);
  }
  p.label = "primary " + name(kind) + "/" + dsa::to_string(fp8) + " mode " + dsa::to_string(mode) + " model " +
            dsa::to_string(p.model.scale) + "," + dsa::to_string(p.model.product) + "," +
            dsa::to_string(p.model.operand) + (p.has_extra ? " extra " + name(extra_kind) : "") + " seed " +
            std::to_string(seed);
  const std::int64_t T = p.B * p.S_q;
  p.K = p.primary.topk + (p.has_extra ? p.extra.topk : 0);
  p.expected_ws.assign(static_cast<std::size_t>(T * p.K * p.dim), 0);
  p.expected_idx.assign(static_cast<std::size_t>(T * p.K), -1);
  std::vector<float> v(static_cast<std::size_t>(p.dim));
  for (int part = 0; part < (p.has_extra ? 2 : 1); ++part) {
    HostSource& s = part == 0 ? p.primary : p.extra;
    for (std::int64_t r = 0; r < T; ++r)
      for (std::int64_t j = 0; j < s.topk; ++j)
        if (auto tok = slot_token(s, mode, p.S_q, r, j)) s.referenced.insert(*tok);
    shape_and_poison(s, rng);
    const std::int64_t j0 = part == 0 ? 0 : p.primary.topk;
    for (std::int64_t r = 0; r < T; ++r) {
      for (std::int64_t j = 0; j < s.topk; ++j) {
        const auto tok = slot_token(s, mode, p.S_q, r, j);
        if (!tok) continue;
        const std::int64_t row = r * p.K + j0 + j;
        dsa::read_mla_token(s.view(), tok->first, tok->second, p.model, v.data());
        for (int d = 0; d < p.dim; ++d) p.expected_ws[row * p.dim + d] = dsa::f32_to_bf16(v[d]);
        p.expected_idx[row] = static_cast<std::int32_t>(row);
      }
    }
  }
  return p;
}

std::vector<Problem> all_problems() {
  std::vector<Problem> out;
  std::uint64_t seed = 1000;
  for (const auto& kind : kAllKinds)
    for (Fp8Format fp8 : {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz})
      for (IndexMode mode : {IndexMode::physical, IndexMode::logical})
        for (int rep = 0; rep < 3; ++rep) out.push_back(make_problem(kind, fp8, mode, seed++));
  return out;
}

MlaGatherSource source_params(const HostSource& s, const std::uint8_t* values, const std::uint8_t* scales,
                              const std::int32_t* indices, const std::int32_t* lengths, const std::int32_t* bt) {
  MlaGatherSource src;
  src.cache = s.geo;
  src.values = values;
  src.scales = scales;
  src.indices = indices;
  src.topk = s.topk;
  src.topk_length = lengths;
  src.block_table = bt;
  src.max_blocks = s.max_blocks;
  return src;
}

SparseMlaGatherParams base_params(const Problem& p) {
  SparseMlaGatherParams g;
  g.batch = p.B;
  g.seq_q = p.S_q;
  g.mode = p.mode;
  g.model = p.model;
  return g;
}

template <class T>
const T* data_or_null(const std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}

// Points at the first mismatch (slot and dim) of a workspace or index comparison.
void expect_equal_outputs(const Problem& p, const std::vector<std::uint16_t>& ws, const std::vector<std::int32_t>& idx) {
  const std::int64_t wi = first_difference(p.expected_ws, ws);
  if (wi >= 0) {
    ADD_FAILURE() << p.label << ": workspace differs first at row " << wi / p.dim / p.K << " slot " << (wi / p.dim) % p.K
                  << " dim " << wi % p.dim << ": expected 0x" << std::hex << p.expected_ws[wi] << ", got 0x" << ws[wi];
  }
  const std::int64_t ii = first_difference(p.expected_idx, idx);
  if (ii >= 0) {
    ADD_FAILURE() << p.label << ": rebuilt index differs first at row " << ii / p.K << " slot " << ii % p.K
                  << ": expected " << p.expected_idx[ii] << ", got " << idx[ii];
  }
}

template <MlaLayout L>
void run_part_on_host(const SparseMlaGatherParams& g, GatherPart part) {
  const auto a = dsa::gpu::detail::make_gather_args(g, part);
  for (std::int64_t i = 0; i < dsa::gpu::detail::gather_items(a); ++i) dsa::gpu::detail::gather_item<L>(a, i);
}

void run_on_host(const SparseMlaGatherParams& g, GatherPart part) {
  switch ((part == GatherPart::primary ? g.primary : g.extra).cache.layout) {
    case MlaLayout::V32: return run_part_on_host<MlaLayout::V32>(g, part);
    case MlaLayout::MODEL1: return run_part_on_host<MlaLayout::MODEL1>(g, part);
    case MlaLayout::MODEL1_SPLIT: return run_part_on_host<MlaLayout::MODEL1_SPLIT>(g, part);
    case MlaLayout::BF16: return run_part_on_host<MlaLayout::BF16>(g, part);
  }
}

// ------------------------------------------------------------------------------------------------
// The kernel's per-item body, run on the CPU over every item: the same indexing, no device.
TEST(SparseMlaGatherHostEmulation, KernelBodyMatchesReadMlaToken) {
  std::int64_t valid = 0, invalid = 0;  // the problems must exercise both (nothing all zero)
  for (const Problem& p : all_problems()) {
    for (const std::int32_t i : p.expected_idx) (i >= 0 ? valid : invalid) += 1;
    SCOPED_TRACE(p.label);
    const std::int64_t T = p.B * p.S_q;
    std::vector<std::uint16_t> ws(static_cast<std::size_t>(T * p.K * p.dim), 0xA5A5);
    std::vector<std::int32_t> idx(static_cast<std::size_t>(T * p.K), 0x5A5A5A5A);
    SparseMlaGatherParams g = base_params(p);
    const auto& s = p.primary;
    g.primary = source_params(s, s.values.data(), data_or_null(s.scales), s.indices.data(),
                              data_or_null(s.topk_length), data_or_null(s.block_table));
    if (p.has_extra) {
      const auto& e = p.extra;
      g.extra = source_params(e, e.values.data(), data_or_null(e.scales), e.indices.data(),
                              data_or_null(e.topk_length), data_or_null(e.block_table));
    }
    g.workspace = ws.data();
    g.rebuilt_indices = idx.data();
    ASSERT_NO_THROW(dsa::gpu::validate(g));
    run_on_host(g, GatherPart::primary);
    if (p.has_extra) run_on_host(g, GatherPart::extra);
    expect_equal_outputs(p, ws, idx);
  }
  EXPECT_GT(valid, 1000);
  EXPECT_GT(invalid, 300);
  std::printf("%lld valid and %lld invalid slots\n", static_cast<long long>(valid), static_cast<long long>(invalid));
}

// The expected outputs are also those of the CPU staged path (dsa::sparse_mla_stage), so the GPU
// workspace can feed any implementation of step 2.
TEST(SparseMlaGatherHostEmulation, ExpectationIsTheCpuStagedPath) {
  for (const Problem& p : all_problems()) {
    SCOPED_TRACE(p.label);
    const std::vector<std::uint16_t> q(static_cast<std::size_t>(p.B * p.S_q * p.dim), 0);
    dsa::SparseMlaDecodeParams d;
    d.q = q;
    d.B = p.B;
    d.S_q = p.S_q;
    d.H = 1;
    d.index_mode = p.mode;
    d.cache = p.primary.view();
    d.block_table = p.primary.block_table;
    d.max_blocks = p.primary.max_blocks;
    d.indices = p.primary.indices;
    d.topk = p.primary.topk;
    d.topk_length = p.primary.topk_length;
    if (p.has_extra) {
      d.extra_cache = p.extra.view();
      d.extra_block_table = p.extra.block_table;
      d.extra_max_blocks = p.extra.max_blocks;
      d.extra_indices = p.extra.indices;
      d.extra_topk = p.extra.topk;
      d.extra_topk_length = p.extra.topk_length;
    }
    d.reader = p.model;
    const dsa::MlaStagedKv staged = dsa::sparse_mla_stage(d);
    ASSERT_EQ(staged.slots, p.K);
    expect_equal_outputs(p, staged.rows, staged.indices);
  }
}

// ------------------------------------------------------------------------------------------------
class SparseMlaGatherGpu : public GpuTest {};

struct DeviceSource {
  DeviceBuffer<std::uint8_t> values, scales;
  DeviceBuffer<std::int32_t> indices, lengths, block_table;
  explicit DeviceSource(const HostSource& s)
      : values(s.values), scales(s.scales), indices(s.indices), lengths(s.topk_length),
        block_table(s.block_table) {}
  MlaGatherSource params(const HostSource& s) const {
    return source_params(s, values.get(), scales.get(), indices.get(), lengths.get(), block_table.get());
  }
};

TEST_F(SparseMlaGatherGpu, MatchesReadMlaTokenByteForByte) {
  for (const Problem& p : all_problems()) {
    SCOPED_TRACE(p.label);
    const std::int64_t T = p.B * p.S_q;
    DeviceSource primary(p.primary);
    std::optional<DeviceSource> extra;
    if (p.has_extra) extra.emplace(p.extra);
    DeviceBuffer<std::uint16_t> ws(static_cast<std::size_t>(T * p.K * p.dim));
    DeviceBuffer<std::int32_t> idx(static_cast<std::size_t>(T * p.K));
    SparseMlaGatherParams g = base_params(p);
    g.primary = primary.params(p.primary);
    if (extra) g.extra = extra->params(p.extra);
    g.workspace = ws.get();
    g.rebuilt_indices = idx.get();
    ASSERT_EQ(dsa::gpu::sparse_mla_gather_workspace_bytes(g), static_cast<std::int64_t>(ws.size() * 2));
    for (int run = 0; run < 2; ++run) {  // the second run over other sentinels: determinism
      ws.fill_bytes(run == 0 ? 0xA5 : 0x3C);
      idx.fill_bytes(run == 0 ? 0x5A : 0xC3);
      dsa::gpu::sparse_mla_gather(g, nullptr);
      DSA_GPU_CHECK(cudaDeviceSynchronize());
      expect_equal_outputs(p, ws.download(), idx.download());
    }
  }
}

TEST_F(SparseMlaGatherGpu, RunsOnAStream) {
  const Problem p = make_problem({MlaLayout::V32}, Fp8Format::e4m3fn, IndexMode::logical, 77);
  const std::int64_t T = p.B * p.S_q;
  DeviceSource primary(p.primary);
  std::optional<DeviceSource> extra;
  if (p.has_extra) extra.emplace(p.extra);
  DeviceBuffer<std::uint16_t> ws(static_cast<std::size_t>(T * p.K * p.dim));
  DeviceBuffer<std::int32_t> idx(static_cast<std::size_t>(T * p.K));
  SparseMlaGatherParams g = base_params(p);
  g.primary = primary.params(p.primary);
  if (extra) g.extra = extra->params(p.extra);
  g.workspace = ws.get();
  g.rebuilt_indices = idx.get();
  cudaStream_t stream;
  DSA_GPU_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ws.fill_bytes(0xA5);
  idx.fill_bytes(0x5A);
  dsa::gpu::sparse_mla_gather(g, stream);
  DSA_GPU_CHECK(cudaStreamSynchronize(stream));
  DSA_GPU_CHECK(cudaStreamDestroy(stream));
  expect_equal_outputs(p, ws.download(), idx.download());
}

// ------------------------------------------------------------------------------------------------
// SPEC §8 on the host: these run (and must throw before any launch) without a device.
SparseMlaGatherParams valid_fake_params() {
  SparseMlaGatherParams g;
  g.batch = 2;
  g.seq_q = 1;
  g.primary.cache = dsa::MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 4, 64);
  g.primary.values = fake_device_ptr<const std::uint8_t>();
  g.primary.indices = fake_device_ptr<const std::int32_t>();
  g.primary.topk = 8;
  g.workspace = fake_device_ptr<std::uint16_t>();
  g.rebuilt_indices = fake_device_ptr<std::int32_t>();
  return g;
}

void expect_argument(const SparseMlaGatherParams& g, const std::string& argument) {
  try {
    dsa::gpu::sparse_mla_gather(g, nullptr);
    ADD_FAILURE() << "no error; expected one naming " << argument;
  } catch (const dsa::InvalidArgument& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
  }
}

TEST(SparseMlaGatherValidation, ErrorsNameTheArgument) {
  EXPECT_NO_THROW(dsa::gpu::validate(valid_fake_params()));
  auto g = valid_fake_params();
  g.batch = -1;
  expect_argument(g, "batch");
  g = valid_fake_params();
  g.seq_q = 0;
  expect_argument(g, "seq_q");
  g = valid_fake_params();
  g.primary.topk = -3;
  expect_argument(g, "primary.topk");
  g = valid_fake_params();
  g.primary.indices = nullptr;
  expect_argument(g, "primary.indices");
  g = valid_fake_params();
  g.primary.values = nullptr;
  expect_argument(g, "primary.values");
  g = valid_fake_params();
  g.primary.cache.page_tokens = 0;
  expect_argument(g, "primary.cache.page_tokens");
  g = valid_fake_params();
  g.primary.cache.block_stride_bytes -= 1;
  expect_argument(g, "primary.cache.block_stride_bytes");
  g = valid_fake_params();
  g.mode = IndexMode::logical;
  g.primary.max_blocks = 4;
  expect_argument(g, "primary.block_table");
  g = valid_fake_params();
  g.extra = g.primary;
  g.extra.cache = dsa::MlaCacheGeometry::packed(MlaLayout::MODEL1, Fp8Format::e4m3fn, 4, 64);
  expect_argument(g, "extra.cache");  // D_qk 512 beside a primary of 576
  g = valid_fake_params();
  g.extra = g.primary;
  g.extra.cache = dsa::MlaCacheGeometry::packed(MlaLayout::MODEL1_SPLIT, Fp8Format::e4m3fn, 4, 64);
  g.primary.cache = dsa::MlaCacheGeometry::packed(MlaLayout::MODEL1, Fp8Format::e4m3fn, 4, 64);
  expect_argument(g, "extra.scales");
  g = valid_fake_params();
  g.workspace = nullptr;
  expect_argument(g, "workspace");
  g = valid_fake_params();
  g.workspace = reinterpret_cast<std::uint16_t*>(reinterpret_cast<std::uintptr_t>(g.workspace) + 2);
  expect_argument(g, "workspace");
  g = valid_fake_params();
  g.rebuilt_indices = nullptr;
  expect_argument(g, "rebuilt_indices");
  g = valid_fake_params();
  g.batch = 1 << 20;
  g.seq_q = 1 << 11;
  expect_argument(g, "seq_q");  // T beyond int32
  g = valid_fake_params();
  g.batch = 1 << 20;
  g.primary.topk = 1 << 12;
  expect_argument(g, "rebuilt_indices");  // T·K beyond int32
}

TEST(SparseMlaGatherValidation, KernelOfAnotherLayoutRefusesTheCache) {
  auto g = valid_fake_params();
  EXPECT_THROW(dsa::gpu::sparse_mla_gather_part<MlaLayout::MODEL1>(g, GatherPart::primary, nullptr), dsa::LayoutMismatch);
  EXPECT_THROW(dsa::gpu::sparse_mla_gather_part<MlaLayout::BF16>(g, GatherPart::primary, nullptr), dsa::LayoutMismatch);
  g.extra = g.primary;
  g.extra.cache = dsa::MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 4, 64, 576);
  EXPECT_THROW(dsa::gpu::sparse_mla_gather_part<MlaLayout::V32>(g, GatherPart::extra, nullptr), dsa::LayoutMismatch);
}

TEST(SparseMlaGatherValidation, EmptyProblemsLaunchNothing) {
  auto g = valid_fake_params();
  g.batch = 0;  // T = 0: no slot, nothing launched, no device needed
  EXPECT_NO_THROW(dsa::gpu::sparse_mla_gather(g, nullptr));
  g = valid_fake_params();
  g.primary.topk = 0;
  g.primary.indices = nullptr;
  g.primary.values = nullptr;
  g.workspace = nullptr;
  g.rebuilt_indices = nullptr;
  EXPECT_NO_THROW(dsa::gpu::sparse_mla_gather(g, nullptr));
}

}  // namespace
