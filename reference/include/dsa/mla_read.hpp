// Reading one sparse MLA token as a reader model sees it (SPEC §2, §2.5), host/device: the CPU
// reader (dsa::read_mla_token) and the GPU gathers call these same functions, so their values
// are bit-identical by construction. Offsets come from layouts.hpp only.
#pragma once

#include <cstdint>

#include "dsa/formats.hpp"
#include "dsa/hd.hpp"
#include "dsa/layouts.hpp"
#include "dsa/reader_model.hpp"

namespace dsa {

// Little-endian loads from byte addresses of any alignment.
DSA_HD inline std::uint16_t load_le_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
DSA_HD inline float load_le_f32(const std::uint8_t* p) {
  return f32_from_bits(static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                       (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24));
}

// One page of an MLA cache and what is needed to read its tokens.
struct MlaPageRef {
  const std::uint8_t* values = nullptr;  // start of the page in the value tensor
  const std::uint8_t* scales = nullptr;  // MODEL1_SPLIT: start of the page in the scale tensor
  std::int32_t page_tokens = 0;          // P
  Fp8Format fp8 = Fp8Format::e4m3fn;
  int bf16_dim_qk = 576;                 // BF16 only
};

template <MlaLayout L>
DSA_HD constexpr int mla_nope_dims() {
  return L == MlaLayout::V32 ? layout::V32::nope_dims : L == MlaLayout::BF16 ? 0 : layout::Model1::nope_dims;
}
template <MlaLayout L>
DSA_HD constexpr int mla_tile_dims() {
  return L == MlaLayout::V32 ? layout::V32::tile_dims : L == MlaLayout::BF16 ? 0 : layout::Model1::tile_dims;
}
template <MlaLayout L>
DSA_HD constexpr int mla_num_scales() {
  return L == MlaLayout::V32 ? layout::V32::num_scales : L == MlaLayout::BF16 ? 0 : layout::Model1::num_scales;
}

// The fp8 NoPE codes of a token are contiguous in dims (read_mla_dims relies on it).
static_assert(layout::V32::dim_offset(3, layout::V32::nope_dims - 1) - layout::V32::dim_offset(3, 0) ==
              layout::V32::nope_dims - 1);
static_assert(layout::Model1::dim_offset(3, layout::Model1::nope_dims - 1) - layout::Model1::dim_offset(3, 0) ==
              layout::Model1::nope_dims - 1);

// Stored scale k of token t as fp32 (V32: the fp32, MODEL1*: the ue8m0 decoded). Not for BF16.
template <MlaLayout L>
DSA_HD inline float mla_stored_scale(const MlaPageRef& pg, std::int64_t t, int k) {
  if constexpr (L == MlaLayout::V32) {
    return load_le_f32(pg.values + layout::V32::scale_offset(t, k));
  } else if constexpr (L == MlaLayout::MODEL1) {
    return ue8m0_to_f32(pg.values[layout::Model1::scale_offset(pg.page_tokens, t, k)]);
  } else if constexpr (L == MlaLayout::MODEL1_SPLIT) {
    return ue8m0_to_f32(pg.scales[layout::Model1Split::scale_offset(t, k)]);
  } else {
    return 1.0f;
  }
}

// Operands of dims [d0, d0 + n) of token t as `m` sees them, into out[0, n). The range lies in
// one scale tile of the fp8 NoPE part or entirely in the bf16 part (RoPE, or a BF16 row); the
// scale is read once for it.
template <MlaLayout L>
DSA_HD inline void read_mla_dims(const MlaPageRef& pg, std::int64_t t, int d0, int n, const ReaderModel& m,
                                 float* out) {
  if constexpr (L == MlaLayout::BF16) {
    for (int i = 0; i < n; ++i)
      out[i] = bf16_operand(load_le_u16(pg.values + layout::Bf16::dim_offset(t, d0 + i, pg.bf16_dim_qk)));
  } else {
    constexpr bool v32 = L == MlaLayout::V32;
    if (d0 >= mla_nope_dims<L>()) {
      for (int i = 0; i < n; ++i) {
        const std::int64_t off = v32 ? layout::V32::dim_offset(t, d0 + i) : layout::Model1::dim_offset(t, d0 + i);
        out[i] = bf16_operand(load_le_u16(pg.values + off));
      }
      return;
    }
    const float s = effective_scale(mla_stored_scale<L>(pg, t, d0 / mla_tile_dims<L>()), m.scale);
    // A scale tile's codes are contiguous (checked below), so the loop reads codes[i] and, with the
    // format and model in locals, vectorizes.
    const std::uint8_t* codes =
        pg.values + (v32 ? layout::V32::dim_offset(t, d0) : layout::Model1::dim_offset(t, d0));
    const Fp8Format fmt = pg.fp8;
    const ReaderModel model = m;
    for (int i = 0; i < n; ++i) out[i] = dequant_operand(codes[i], fmt, s, model);
  }
}

// All dim_qk operands of token t, tile by tile.
template <MlaLayout L>
DSA_HD inline void read_mla_token_as(const MlaPageRef& pg, std::int64_t t, const ReaderModel& m, float* out) {
  if constexpr (L == MlaLayout::BF16) {
    read_mla_dims<L>(pg, t, 0, pg.bf16_dim_qk, m, out);
  } else {
    constexpr int nope = mla_nope_dims<L>(), tile = mla_tile_dims<L>(), dim_qk = mla_dim_qk(L);
    for (int d0 = 0; d0 < nope; d0 += tile) read_mla_dims<L>(pg, t, d0, tile, m, out + d0);
    read_mla_dims<L>(pg, t, nope, dim_qk - nope, m, out + nope);
  }
}

}  // namespace dsa
