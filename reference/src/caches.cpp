// Cache geometry, validation and readers (SPEC §2, §6.1, §8).
#include "dsa/caches.hpp"

#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "dsa/error.hpp"

namespace dsa {

float load_f32(const std::uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
void store_f32(std::uint8_t* p, float v) { std::memcpy(p, &v, 4); }
std::uint16_t load_u16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void store_u16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }

const char* to_string(ScaleAs s) {
  switch (s) {
    case ScaleAs::fp32: return "fp32";
    case ScaleAs::bf16: return "bf16";
    case ScaleAs::e8m0_floor: return "e8m0_floor";
  }
  return "?";
}
const char* to_string(ProductAs p) { return p == ProductAs::fp32 ? "fp32" : "bf16"; }
const char* to_string(OperandAs o) { return o == OperandAs::fp32 ? "fp32" : "bf16"; }

// ----------------------------------------------------------------------------------------------
MlaCacheGeometry MlaCacheGeometry::packed(MlaLayout layout, Fp8Format fp8, std::int64_t num_blocks,
                                          std::int32_t page_tokens, int bf16_dim_qk) {
  MlaCacheGeometry g;
  g.layout = layout;
  g.fp8 = fp8;
  g.num_blocks = num_blocks;
  g.page_tokens = page_tokens;
  g.bf16_dim_qk = bf16_dim_qk;
  g.block_stride_bytes = g.page_bytes();
  g.scale_block_stride_bytes = g.scale_page_bytes();
  return g;
}

std::int64_t MlaCacheGeometry::page_bytes() const {
  switch (layout) {
    case MlaLayout::V32: return layout::V32::page_bytes(page_tokens);
    case MlaLayout::MODEL1: return layout::Model1::page_bytes(page_tokens);
    case MlaLayout::MODEL1_SPLIT: return layout::Model1Split::page_bytes(page_tokens);
    case MlaLayout::BF16: return layout::Bf16::page_bytes(page_tokens, bf16_dim_qk);
  }
  return 0;
}

std::int64_t MlaCacheGeometry::scale_page_bytes() const {
  return layout == MlaLayout::MODEL1_SPLIT ? layout::Model1Split::scale_page_bytes(page_tokens) : 0;
}

std::int64_t MlaCacheGeometry::values_bytes() const {
  return num_blocks == 0 ? 0 : (num_blocks - 1) * block_stride_bytes + page_bytes();
}

std::int64_t MlaCacheGeometry::scales_bytes() const {
  if (layout != MlaLayout::MODEL1_SPLIT || num_blocks == 0) return 0;
  return (num_blocks - 1) * scale_block_stride_bytes + scale_page_bytes();
}

namespace {
// (num_blocks − 1)·stride + page is representable, so values_bytes()/bytes() cannot overflow.
bool bytes_fit_int64(std::int64_t num_blocks, std::int64_t stride, std::int64_t page) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  return num_blocks <= 1 || stride <= 0 || num_blocks - 1 <= (kMax - page) / stride;
}
}  // namespace

void validate(const MlaCacheGeometry& g, const char* name) {
  const std::string n = name;
  if (g.num_blocks < 0)
    throw InvalidArgument(n + ".num_blocks", fmt::format("must be ≥ 0 (got {})", g.num_blocks));
  if (g.page_tokens < 1)
    throw InvalidArgument(n + ".page_tokens", fmt::format("must be ≥ 1 (got {})", g.page_tokens));
  if (g.layout == MlaLayout::BF16 && g.bf16_dim_qk != 576 && g.bf16_dim_qk != 512)
    throw InvalidArgument(n + ".bf16_dim_qk",
                          fmt::format("must be 576 (V32 shape) or 512 (MODEL1 shape) (got {})", g.bf16_dim_qk));
  if (g.block_stride_bytes < g.page_bytes())
    throw InvalidArgument(n + ".block_stride_bytes",
                          fmt::format("must be ≥ the {} page size {} B for page_tokens {} (got {})",
                                      to_string(g.layout), g.page_bytes(), g.page_tokens,
                                      g.block_stride_bytes));
  if (g.layout == MlaLayout::MODEL1_SPLIT && g.scale_block_stride_bytes < g.scale_page_bytes())
    throw InvalidArgument(n + ".scale_block_stride_bytes",
                          fmt::format("must be ≥ 8·page_tokens = {} B (got {})", g.scale_page_bytes(),
                                      g.scale_block_stride_bytes));
  if (!bytes_fit_int64(g.num_blocks, g.block_stride_bytes, g.page_bytes()) ||
      (g.layout == MlaLayout::MODEL1_SPLIT &&
       !bytes_fit_int64(g.num_blocks, g.scale_block_stride_bytes, g.scale_page_bytes())))
    throw InvalidArgument(n + ".num_blocks", fmt::format("{} blocks at a stride of {} B exceed the int64 byte range",
                                                         g.num_blocks, g.block_stride_bytes));
}

void validate(const MlaCacheView& c, const char* name) {
  validate(c.geo, name);
  const std::string n = name;
  if (static_cast<std::int64_t>(c.values.size()) < c.geo.values_bytes())
    throw InvalidArgument(n + ".values", fmt::format("holds {} B but the geometry needs {} B",
                                                     c.values.size(), c.geo.values_bytes()));
  if (static_cast<std::int64_t>(c.scales.size()) < c.geo.scales_bytes())
    throw InvalidArgument(n + ".scales", fmt::format("holds {} B but MODEL1_SPLIT needs {} B",
                                                     c.scales.size(), c.geo.scales_bytes()));
}

void require_layout(const MlaCacheGeometry& g, MlaLayout expected, const char* name) {
  if (g.layout != expected) throw LayoutMismatch(name, to_string(g.layout), to_string(expected));
}

MlaCacheBuffer::MlaCacheBuffer(const MlaCacheGeometry& g) : geo(g) {
  validate(g, "cache");
  values.assign(static_cast<std::size_t>(g.values_bytes()), 0);
  scales.assign(static_cast<std::size_t>(g.scales_bytes()), 0);
}

namespace {
template <MlaLayout L>
int read_scales_as(const MlaPageRef& pg, std::int64_t t, float* out) {
  for (int k = 0; k < mla_num_scales<L>(); ++k) out[k] = mla_stored_scale<L>(pg, t, k);
  return mla_num_scales<L>();
}
}  // namespace

int read_mla_scales(const MlaCacheView& c, std::int64_t block, std::int64_t t, float* out) {
  const MlaPageRef pg = mla_page_ref(c.geo, c.values.data(), c.scales.data(), block);
  switch (c.geo.layout) {
    case MlaLayout::V32: return read_scales_as<MlaLayout::V32>(pg, t, out);
    case MlaLayout::MODEL1: return read_scales_as<MlaLayout::MODEL1>(pg, t, out);
    case MlaLayout::MODEL1_SPLIT: return read_scales_as<MlaLayout::MODEL1_SPLIT>(pg, t, out);
    case MlaLayout::BF16: return 0;
  }
  return 0;
}

void read_mla_token(const MlaCacheView& c, std::int64_t block, std::int64_t t, const ReaderModel& model,
                    float* out) {
  const MlaPageRef pg = mla_page_ref(c.geo, c.values.data(), c.scales.data(), block);
  switch (c.geo.layout) {
    case MlaLayout::V32: return read_mla_token_as<MlaLayout::V32>(pg, t, model, out);
    case MlaLayout::MODEL1: return read_mla_token_as<MlaLayout::MODEL1>(pg, t, model, out);
    case MlaLayout::MODEL1_SPLIT: return read_mla_token_as<MlaLayout::MODEL1_SPLIT>(pg, t, model, out);
    case MlaLayout::BF16: return read_mla_token_as<MlaLayout::BF16>(pg, t, model, out);
  }
}

void poison_mla_token(const MlaCacheSpan& c, std::int64_t block, std::int32_t t) {
  const auto& g = c.geo;
  std::uint8_t* page = c.values.data() + block * g.block_stride_bytes;
  const std::uint8_t nan8 = fp8_nan_code(g.fp8);
  constexpr std::uint16_t kNan16 = 0x7FC0;
  switch (g.layout) {
    case MlaLayout::V32:
      for (int d = 0; d < layout::V32::nope_dims; ++d) page[layout::V32::dim_offset(t, d)] = nan8;
      for (int k = 0; k < layout::V32::num_scales; ++k)
        store_f32(page + layout::V32::scale_offset(t, k), std::numeric_limits<float>::quiet_NaN());
      for (int d = layout::V32::nope_dims; d < layout::V32::dim_qk; ++d)
        store_u16(page + layout::V32::dim_offset(t, d), kNan16);
      break;
    case MlaLayout::MODEL1:
    case MlaLayout::MODEL1_SPLIT:
      for (int d = 0; d < layout::Model1::nope_dims; ++d) page[layout::Model1::dim_offset(t, d)] = nan8;
      for (int d = layout::Model1::nope_dims; d < layout::Model1::dim_qk; ++d)
        store_u16(page + layout::Model1::dim_offset(t, d), kNan16);
      for (int k = 0; k < layout::Model1::num_scales; ++k) {
        if (g.layout == MlaLayout::MODEL1)
          page[layout::Model1::scale_offset(g.page_tokens, t, k)] = 0xFF;  // ue8m0 NaN
        else
          c.scales[static_cast<std::size_t>(block * g.scale_block_stride_bytes +
                                            layout::Model1Split::scale_offset(t, k))] = 0xFF;
      }
      break;
    case MlaLayout::BF16:
      for (int d = 0; d < g.bf16_dim_qk; ++d) store_u16(page + layout::Bf16::dim_offset(t, d, g.bf16_dim_qk), kNan16);
      break;
  }
}

// ----------------------------------------------------------------------------------------------
IndexKGeometry IndexKGeometry::packed(IndexKLayout layout, Fp8Format fp8, std::int64_t num_blocks,
                                      std::int32_t page_tokens, std::int32_t head_dim) {
  IndexKGeometry g;
  g.layout = layout;
  g.fp8 = fp8;
  g.num_blocks = num_blocks;
  g.page_tokens = page_tokens;
  g.head_dim = head_dim;
  // SPEC §6.1: the stride is a multiple of 4 even where P·(D+4) is not (odd P and D).
  g.block_stride_bytes = layout::round_up(g.page_bytes(), 4);
  return g;
}

std::int64_t IndexKGeometry::bytes() const {
  return num_blocks == 0 ? 0 : (num_blocks - 1) * block_stride_bytes + page_bytes();
}

void validate(const IndexKGeometry& g, const char* name) {
  const std::string n = name;
  if (g.num_blocks < 0)
    throw InvalidArgument(n + ".num_blocks", fmt::format("must be ≥ 0 (got {})", g.num_blocks));
  if (g.page_tokens < 1)
    throw InvalidArgument(n + ".page_tokens", fmt::format("must be ≥ 1 (got {})", g.page_tokens));
  if (g.head_dim < 1)
    throw InvalidArgument(n + ".head_dim", fmt::format("must be ≥ 1 (got {})", g.head_dim));
  if (g.layout == IndexKLayout::preshuffle) {
    if (g.page_tokens % 16 != 0)
      throw InvalidArgument(n + ".page_tokens",
                            fmt::format("must be a multiple of 16 for layout preshuffle (got {})", g.page_tokens));
    if (g.head_dim % 16 != 0)
      throw InvalidArgument(n + ".head_dim",
                            fmt::format("must be a multiple of 16 for layout preshuffle (got {})", g.head_dim));
  }
  if (g.block_stride_bytes < g.page_bytes())
    throw InvalidArgument(n + ".block_stride_bytes",
                          fmt::format("must be ≥ page_tokens·(head_dim+4) = {} B (got {})", g.page_bytes(),
                                      g.block_stride_bytes));
  if (g.block_stride_bytes % 4 != 0)
    throw InvalidArgument(n + ".block_stride_bytes",
                          fmt::format("must be a multiple of 4 (got {})", g.block_stride_bytes));
  if (!bytes_fit_int64(g.num_blocks, g.block_stride_bytes, g.page_bytes()))
    throw InvalidArgument(n + ".num_blocks", fmt::format("{} blocks at a stride of {} B exceed the int64 byte range",
                                                         g.num_blocks, g.block_stride_bytes));
}

void validate(const IndexKCacheView& c, const char* name) {
  validate(c.geo, name);
  if (static_cast<std::int64_t>(c.bytes.size()) < c.geo.bytes())
    throw InvalidArgument(std::string(name) + ".bytes",
                          fmt::format("holds {} B but the geometry needs {} B", c.bytes.size(), c.geo.bytes()));
}

void require_layout(const IndexKGeometry& g, IndexKLayout expected, const char* name) {
  if (g.layout != expected) throw LayoutMismatch(name, to_string(g.layout), to_string(expected));
}

IndexKCacheBuffer::IndexKCacheBuffer(const IndexKGeometry& g) : geo(g) {
  validate(g, "cache");
  bytes.assign(static_cast<std::size_t>(g.bytes()), 0);
}

std::uint8_t read_index_k_code(const IndexKCacheView& c, std::int64_t block, std::int64_t t, int d) {
  const auto& g = c.geo;
  return c.bytes[static_cast<std::size_t>(block * g.block_stride_bytes +
                                          layout::IndexK::value_offset(g.layout, g.head_dim, t, d))];
}

float read_index_k_scale(const IndexKCacheView& c, std::int64_t block, std::int64_t t) {
  const auto& g = c.geo;
  return load_f32(c.bytes.data() + block * g.block_stride_bytes +
                  layout::IndexK::scale_offset(g.page_tokens, g.head_dim, t));
}

}  // namespace dsa
