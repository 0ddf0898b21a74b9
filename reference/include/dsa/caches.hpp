// Cache objects: geometry + layout tag + bytes. Every cache carries its layout tag, so a reader
// or writer of another layout fails instead of misreading (SPEC §2, §6.1, §8).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dsa/formats.hpp"
#include "dsa/hd.hpp"
#include "dsa/layouts.hpp"
#include "dsa/mla_read.hpp"
#include "dsa/reader_model.hpp"

namespace dsa {

// ----------------------------------------------------------------------------------------------
// Sparse MLA cache.
struct MlaCacheGeometry {
  MlaLayout layout = MlaLayout::V32;
  Fp8Format fp8 = Fp8Format::e4m3fn;       // format of the NoPE codes (ignored for BF16)
  std::int64_t num_blocks = 0;
  std::int32_t page_tokens = 64;           // P
  std::int64_t block_stride_bytes = 0;     // ≥ page_bytes(); may exceed it
  std::int64_t scale_block_stride_bytes = 0;  // MODEL1_SPLIT scale tensor only; ≥ 8·P
  int bf16_dim_qk = 576;                   // BF16 only: elements per row

  // A geometry with packed blocks (stride = page bytes).
  static MlaCacheGeometry packed(MlaLayout layout, Fp8Format fp8, std::int64_t num_blocks,
                                 std::int32_t page_tokens, int bf16_dim_qk = 576);

  std::int64_t page_bytes() const;         // bytes one page occupies in the value tensor
  std::int64_t scale_page_bytes() const;   // MODEL1_SPLIT: 8·P; 0 otherwise
  std::int64_t values_bytes() const;       // exact size of the value tensor: (nb−1)·stride + page
  std::int64_t scales_bytes() const;       // exact size of the scale tensor (MODEL1_SPLIT), else 0
  DSA_HD std::int64_t capacity_tokens() const { return num_blocks * page_tokens; }
  DSA_HD int dim_qk() const { return mla_dim_qk(layout, bf16_dim_qk); }
  DSA_HD int dim_v() const { return mla_dim_v(); }
};

// Page `block` of a cache whose tensors start at `values` and `scales` (host or device memory).
DSA_HD inline MlaPageRef mla_page_ref(const MlaCacheGeometry& g, const std::uint8_t* values,
                                      const std::uint8_t* scales, std::int64_t block) {
  MlaPageRef pg;
  pg.values = values + block * g.block_stride_bytes;
  pg.scales = g.layout == MlaLayout::MODEL1_SPLIT ? scales + block * g.scale_block_stride_bytes : nullptr;
  pg.page_tokens = g.page_tokens;
  pg.fp8 = g.fp8;
  pg.bf16_dim_qk = g.bf16_dim_qk;
  return pg;
}

template <class Byte>
struct BasicMlaCache {
  MlaCacheGeometry geo;
  std::span<Byte> values;  // V32/MODEL1: the whole cache; SPLIT: [nb][P][576]; BF16: rows
  std::span<Byte> scales;  // MODEL1_SPLIT only: [nb][P][8]
};
using MlaCacheView = BasicMlaCache<const std::uint8_t>;
using MlaCacheSpan = BasicMlaCache<std::uint8_t>;

// An owning cache whose buffers are sized exactly (no slack after the last page), so that a
// stray read past the end is caught by ASan.
struct MlaCacheBuffer {
  MlaCacheGeometry geo;
  std::vector<std::uint8_t> values;
  std::vector<std::uint8_t> scales;

  explicit MlaCacheBuffer(const MlaCacheGeometry& g);  // validates g; zero-filled
  MlaCacheView view() const { return {geo, values, scales}; }
  MlaCacheSpan span() { return {geo, values, scales}; }
};

// SPEC §8 checks. `name` prefixes the argument names in errors ("cache", "extra_cache", ...).
void validate(const MlaCacheGeometry& g, const char* name);
void validate(const MlaCacheView& c, const char* name);
void require_layout(const MlaCacheGeometry& g, MlaLayout expected, const char* name);

// The operands of token (block, t), all dim_qk() of them, as `model` sees them (SPEC §2.5).
// `out` has dim_qk() floats. No bounds are checked here: callers resolve validity first.
// Implemented by read_mla_token_as<L> (mla_read.hpp), which the GPU gathers call too.
void read_mla_token(const MlaCacheView& c, std::int64_t block, std::int64_t t,
                    const ReaderModel& model, float* out);

// The stored scales of token (block, t) as fp32 (V32: 4, MODEL1*: 7, BF16: none).
int read_mla_scales(const MlaCacheView& c, std::int64_t block, std::int64_t t, float* out);

// SPEC §10.4 poison: every byte a reader of token (block, t) uses becomes NaN — fp8 NaN codes, NaN
// scales (fp32 NaN, ue8m0 0xFF), bf16 NaN (RoPE dims, BF16 rows) — so that any result depending on
// a token no valid slot selects is visibly wrong. Unchecked bounds, like the readers.
void poison_mla_token(const MlaCacheSpan& c, std::int64_t block, std::int32_t t);
inline void poison_mla_token(MlaCacheBuffer& c, std::int64_t block, std::int32_t t) {
  poison_mla_token(c.span(), block, t);
}

// ----------------------------------------------------------------------------------------------
// Indexer K cache.
struct IndexKGeometry {
  IndexKLayout layout = IndexKLayout::standard;
  Fp8Format fp8 = Fp8Format::e4m3fn;
  std::int64_t num_blocks = 0;
  std::int32_t page_tokens = 64;        // P (preshuffle: multiple of 16)
  std::int32_t head_dim = 128;          // D (preshuffle: multiple of 16)
  std::int64_t block_stride_bytes = 0;  // ≥ P·(D+4), multiple of 4

  // Blocks back to back: stride = P·(D+4) rounded up to the multiple of 4 that SPEC §6.1 requires.
  static IndexKGeometry packed(IndexKLayout layout, Fp8Format fp8, std::int64_t num_blocks,
                               std::int32_t page_tokens, std::int32_t head_dim);
  std::int64_t page_bytes() const { return layout::IndexK::min_page_bytes(page_tokens, head_dim); }
  std::int64_t bytes() const;  // exact tensor size: (nb−1)·stride + P·(D+4)
  std::int64_t capacity_tokens() const { return num_blocks * page_tokens; }
};

template <class Byte>
struct BasicIndexKCache {
  IndexKGeometry geo;
  std::span<Byte> bytes;
};
using IndexKCacheView = BasicIndexKCache<const std::uint8_t>;
using IndexKCacheSpan = BasicIndexKCache<std::uint8_t>;

struct IndexKCacheBuffer {
  IndexKGeometry geo;
  std::vector<std::uint8_t> bytes;
  explicit IndexKCacheBuffer(const IndexKGeometry& g);
  IndexKCacheView view() const { return {geo, bytes}; }
  IndexKCacheSpan span() { return {geo, bytes}; }
};

void validate(const IndexKGeometry& g, const char* name);
void validate(const IndexKCacheView& c, const char* name);
void require_layout(const IndexKGeometry& g, IndexKLayout expected, const char* name);

// fp8 code of (block, t, d) and the fp32 scale of (block, t).
std::uint8_t read_index_k_code(const IndexKCacheView& c, std::int64_t block, std::int64_t t, int d);
float read_index_k_scale(const IndexKCacheView& c, std::int64_t block, std::int64_t t);

// Byte-level helpers shared by readers and writers (little-endian loads/stores).
float load_f32(const std::uint8_t* p);
void store_f32(std::uint8_t* p, float v);
std::uint16_t load_u16(const std::uint8_t* p);
void store_u16(std::uint8_t* p, std::uint16_t v);

}  // namespace dsa
