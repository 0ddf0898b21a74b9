// Cache writers (quantize + store through a slot mapping) and gathers (SPEC §2.4, §6.1).
#include "dsa/quantize.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "dsa/error.hpp"

namespace dsa {

const char* to_string(ScalePolicy p) { return p == ScalePolicy::pow2_ceil ? "pow2_ceil" : "fp32"; }

namespace {

float resolve_fmax(float fmax, Fp8Format f) { return fmax > 0.0f ? fmax : fp8_max(f); }

void check_fmax(float fmax, Fp8Format f, const char* name) {
  if (!(fmax >= 0.0f) || fmax > fp8_max(f))
    throw InvalidArgument(name, fmt::format("must be 0 (format max) or in (0, {}] for {} (got {})",
                                            fp8_max(f), to_string(f), fmax));
}

// Checks a slot mapping against a capacity; returns nothing, throws on the first bad slot.
void check_slots(std::span<const std::int64_t> slots, std::int64_t n, std::int64_t capacity) {
  if (static_cast<std::int64_t>(slots.size()) < n)
    throw InvalidArgument("slot_mapping", fmt::format("has {} entries for {} rows", slots.size(), n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t s = slots[static_cast<std::size_t>(i)];
    if (s != -1 && (s < 0 || s >= capacity))
      throw InvalidArgument("slot_mapping",
                            fmt::format("entry {} is {}: must be −1 (skip) or in [0, {})", i, s, capacity));
  }
}

}  // namespace

float mla_tile_scale(float amax, float fmax, ScalePolicy policy) {
  const float q = amax / fmax;
  // SPEC §2.4: fp32 is amax / fmax itself; only a zero quotient (an all-zero tile) is floored.
  if (policy == ScalePolicy::fp32) return q > 0.0f ? q : kMlaScaleFloor;
  return ue8m0_to_f32(f32_to_ue8m0(std::max(q, kMlaScaleFloor), Ue8m0Rounding::up));
}

void quantize_kv(std::span<const float> rows, std::int64_t num_rows, std::int64_t row_stride,
                 std::span<const std::int64_t> slot_mapping, MlaCacheSpan cache, const MlaQuantParams& params) {
  const MlaCacheView view{cache.geo, cache.values, cache.scales};
  validate(view, "cache");
  const auto& g = cache.geo;
  const int dim_qk = g.dim_qk();
  if (num_rows < 0) throw InvalidArgument("num_rows", fmt::format("must be ≥ 0 (got {})", num_rows));
  if (row_stride < dim_qk)
    throw InvalidArgument("row_stride", fmt::format("must be ≥ dim_qk = {} (got {})", dim_qk, row_stride));
  // (num_rows − 1)·row_stride + dim_qk ≤ rows.size(), written so that it cannot overflow.
  const auto have_rows = static_cast<std::int64_t>(rows.size());
  if (num_rows > 0 && (have_rows < dim_qk || num_rows - 1 > (have_rows - dim_qk) / row_stride))
    throw InvalidArgument("rows", fmt::format("holds {} floats, too few for {} rows of {} at stride {}", have_rows,
                                              num_rows, dim_qk, row_stride));
  check_slots(slot_mapping, num_rows, g.capacity_tokens());
  if (g.layout != MlaLayout::BF16) check_fmax(params.fmax, g.fp8, "params.fmax");
  if (params.policy == ScalePolicy::fp32 && g.layout != MlaLayout::V32 && g.layout != MlaLayout::BF16)
    throw InvalidArgument("params.policy", fmt::format("fp32 scales need layout V32; {} stores ue8m0 scales",
                                                       to_string(g.layout)));
  const float fmax = resolve_fmax(params.fmax, g.fp8);

  for (std::int64_t i = 0; i < num_rows; ++i) {
    const std::int64_t slot = slot_mapping[static_cast<std::size_t>(i)];
    if (slot == -1) continue;
    const std::int64_t block = slot / g.page_tokens, t = slot % g.page_tokens;
    const float* x = rows.data() + i * row_stride;
    std::uint8_t* page = cache.values.data() + block * g.block_stride_bytes;
    if (g.layout == MlaLayout::BF16) {
      for (int d = 0; d < dim_qk; ++d) store_u16(page + layout::Bf16::dim_offset(t, d, dim_qk), f32_to_bf16(x[d]));
      continue;
    }
    const bool v32 = g.layout == MlaLayout::V32;
    const int nope = v32 ? layout::V32::nope_dims : layout::Model1::nope_dims;
    const int tile = v32 ? layout::V32::tile_dims : layout::Model1::tile_dims;
    auto dim_off = [&](int d) { return v32 ? layout::V32::dim_offset(t, d) : layout::Model1::dim_offset(t, d); };
    for (int k = 0; k * tile < nope; ++k) {
      float amax = 0.0f;
      for (int d = k * tile; d < (k + 1) * tile; ++d) amax = std::max(amax, std::fabs(x[d]));
      const float s = mla_tile_scale(amax, fmax, params.policy);
      for (int d = k * tile; d < (k + 1) * tile; ++d) page[dim_off(d)] = f32_to_fp8(x[d] / s, g.fp8, Overflow::saturate);
      switch (g.layout) {
        case MlaLayout::V32: store_f32(page + layout::V32::scale_offset(t, k), s); break;
        case MlaLayout::MODEL1:
          page[layout::Model1::scale_offset(g.page_tokens, t, k)] = f32_to_ue8m0(s, Ue8m0Rounding::up);
          break;
        case MlaLayout::MODEL1_SPLIT:
          cache.scales[static_cast<std::size_t>(block * g.scale_block_stride_bytes +
                                                layout::Model1Split::scale_offset(t, k))] =
              f32_to_ue8m0(s, Ue8m0Rounding::up);
          break;
        case MlaLayout::BF16: break;
      }
    }
    for (int d = nope; d < dim_qk; ++d) store_u16(page + dim_off(d), f32_to_bf16(x[d]));
    // The pad byte of a MODEL1 scale row is written as 0 so that pages are deterministic.
    if (g.layout == MlaLayout::MODEL1) page[layout::Model1::scale_offset(g.page_tokens, t, 7)] = 0;
    if (g.layout == MlaLayout::MODEL1_SPLIT)
      cache.scales[static_cast<std::size_t>(block * g.scale_block_stride_bytes + layout::Model1Split::scale_offset(t, 7))] = 0;
  }
}

// ----------------------------------------------------------------------------------------------
void quantize_index_k(std::span<const float> k, std::int64_t n, std::span<const std::int64_t> slot_mapping,
                      IndexKCacheSpan cache, const IndexKQuantParams& params) {
  const IndexKCacheView view{cache.geo, cache.bytes};
  validate(view, "cache");
  const auto& g = cache.geo;
  if (n < 0) throw InvalidArgument("n", fmt::format("must be ≥ 0 (got {})", n));
  if (n > static_cast<std::int64_t>(k.size()) / g.head_dim)
    throw InvalidArgument("k", fmt::format("holds {} floats, needs n·head_dim = {}·{}", k.size(), n, g.head_dim));
  check_slots(slot_mapping, n, g.capacity_tokens());
  check_fmax(params.fmax, g.fp8, "params.fmax");
  const float fmax = resolve_fmax(params.fmax, g.fp8);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t slot = slot_mapping[static_cast<std::size_t>(i)];
    if (slot == -1) continue;
    const std::int64_t block = slot / g.page_tokens, t = slot % g.page_tokens;
    const float* x = k.data() + i * g.head_dim;
    float amax = 0.0f;
    for (int d = 0; d < g.head_dim; ++d) amax = std::max(amax, std::fabs(x[d]));
    const float s = index_k_token_scale(amax, fmax, params.ue8m0_scale);
    std::uint8_t* page = cache.bytes.data() + block * g.block_stride_bytes;
    for (int d = 0; d < g.head_dim; ++d)
      page[layout::IndexK::value_offset(g.layout, g.head_dim, t, d)] = f32_to_fp8(x[d] / s, g.fp8, Overflow::saturate);
    store_f32(page + layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t), s);
  }
}

void gather_index_k(const IndexKCacheView& cache, std::span<const std::int32_t> block_table, std::int64_t batch,
                    std::int64_t max_blocks, std::span<const std::int32_t> seq_lens,
                    std::span<std::uint8_t> out_codes, std::span<float> out_scales) {
  validate(cache, "cache");
  const auto& g = cache.geo;
  if (batch < 0) throw InvalidArgument("batch", fmt::format("must be ≥ 0 (got {})", batch));
  if (max_blocks < 0) throw InvalidArgument("max_blocks", fmt::format("must be ≥ 0 (got {})", max_blocks));
  if (max_blocks > 0 && batch > static_cast<std::int64_t>(block_table.size()) / max_blocks)
    throw InvalidArgument("block_table", fmt::format("holds {} entries, needs batch·max_blocks = {}·{}",
                                                     block_table.size(), batch, max_blocks));
  if (static_cast<std::int64_t>(seq_lens.size()) < batch)
    throw InvalidArgument("seq_lens", fmt::format("holds {} entries for batch {}", seq_lens.size(), batch));
  std::int64_t total = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t len = seq_lens[static_cast<std::size_t>(b)];
    if (len < 0 || len > max_blocks * g.page_tokens)
      throw InvalidArgument("seq_lens", fmt::format("entry {} is {}: must be in [0, max_blocks·page_tokens = {}]", b,
                                                    len, max_blocks * g.page_tokens));
    for (std::int64_t p = 0; p < (len + g.page_tokens - 1) / g.page_tokens; ++p) {
      const std::int32_t blk = block_table[static_cast<std::size_t>(b * max_blocks + p)];
      if (blk < 0 || blk >= g.num_blocks)
        throw InvalidArgument("block_table", fmt::format("entry [{}][{}] is {}: must be in [0, num_blocks = {})", b,
                                                         p, blk, g.num_blocks));
    }
    total += len;
  }
  if (static_cast<std::int64_t>(out_codes.size()) < total * g.head_dim)
    throw InvalidArgument("out_codes", fmt::format("holds {} B, needs Σ seq_lens·head_dim = {}", out_codes.size(),
                                                   total * g.head_dim));
  if (static_cast<std::int64_t>(out_scales.size()) < total)
    throw InvalidArgument("out_scales", fmt::format("holds {} floats, needs Σ seq_lens = {}", out_scales.size(), total));
  std::int64_t row = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t p = 0; p < seq_lens[static_cast<std::size_t>(b)]; ++p, ++row) {
      const std::int64_t block = block_table[static_cast<std::size_t>(b * max_blocks + p / g.page_tokens)];
      const std::int64_t t = p % g.page_tokens;
      for (int d = 0; d < g.head_dim; ++d)
        out_codes[static_cast<std::size_t>(row * g.head_dim + d)] = read_index_k_code(cache, block, t, d);
      out_scales[static_cast<std::size_t>(row)] = read_index_k_scale(cache, block, t);
    }
  }
}

void transcode_index_k(const IndexKCacheView& src, IndexKCacheSpan dst) {
  validate(src, "src");
  validate(IndexKCacheView{dst.geo, dst.bytes}, "dst");
  const auto& s = src.geo;
  const auto& d = dst.geo;
  if (s.num_blocks != d.num_blocks || s.page_tokens != d.page_tokens || s.head_dim != d.head_dim || s.fp8 != d.fp8)
    throw InvalidArgument("dst", "must have the source's num_blocks, page_tokens, head_dim and fp8 format");
  for (std::int64_t b = 0; b < s.num_blocks; ++b) {
    std::uint8_t* page = dst.bytes.data() + b * d.block_stride_bytes;
    for (std::int64_t t = 0; t < s.page_tokens; ++t) {
      for (int dim = 0; dim < s.head_dim; ++dim)
        page[layout::IndexK::value_offset(d.layout, d.head_dim, t, dim)] = read_index_k_code(src, b, t, dim);
      store_f32(page + layout::IndexK::scale_offset(d.page_tokens, d.head_dim, t), read_index_k_scale(src, b, t));
    }
  }
}

}  // namespace dsa
