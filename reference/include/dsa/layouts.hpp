// Byte arithmetic of every cache layout of SPEC §2 and §6.1 — the one place where it is written.
// Writers, readers, GPU kernels and tests all call these functions; none re-derives an offset.
// Offsets are relative to the start of one page (block) of the tensor named in the comment;
// the caller adds `block * block_stride_bytes`.
#pragma once

#include <cstdint>

#include "dsa/hd.hpp"

namespace dsa {

// ----------------------------------------------------------------------------------------------
// Sparse MLA KV caches (SPEC §2).
enum class MlaLayout : std::uint8_t {
  V32,           // fp8_ds_mla, 656 B/token, D_qk 576, D_v 512
  MODEL1,        // DeepSeek-V4, page-structured: P×576 B values then P×8 B scales, padded to 576
  MODEL1_SPLIT,  // MODEL1 data held as two tensors: values [nb][P][576], scales [nb][P][8]
  BF16,          // dense/paged bf16 rows of D_qk elements
};

inline const char* to_string(MlaLayout l) {
  switch (l) {
    case MlaLayout::V32: return "V32";
    case MlaLayout::MODEL1: return "MODEL1";
    case MlaLayout::MODEL1_SPLIT: return "MODEL1_SPLIT";
    case MlaLayout::BF16: return "BF16";
  }
  return "?";
}

namespace layout {

DSA_HD constexpr std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

// V32 (SPEC §2.1). One token: [0,512) fp8 NoPE | [512,528) 4×fp32 scales | [528,656) 64×bf16 RoPE.
struct V32 {
  static constexpr int token_bytes = 656;
  static constexpr int dim_qk = 576;
  static constexpr int dim_v = 512;
  static constexpr int nope_dims = 512;
  static constexpr int rope_dims = 64;
  static constexpr int tile_dims = 128;  // one scale per 128 NoPE dims
  static constexpr int num_scales = 4;
  static constexpr int scale_bytes = 4;  // fp32
  DSA_HD static constexpr std::int64_t page_bytes(std::int64_t page_tokens) {
    return page_tokens * token_bytes;
  }
  // Byte of element d ∈ [0, 576) of token t: an fp8 code for d < 512, a bf16 for d ≥ 512.
  DSA_HD static constexpr std::int64_t dim_offset(std::int64_t t, int d) {
    return d < nope_dims ? t * token_bytes + d : t * token_bytes + 528 + 2 * (d - nope_dims);
  }
  // Byte of fp32 scale k ∈ [0, 4) of token t; it multiplies NoPE dims [128k, 128k+128).
  DSA_HD static constexpr std::int64_t scale_offset(std::int64_t t, int k) {
    return t * token_bytes + 512 + scale_bytes * k;
  }
};

// MODEL1 (SPEC §2.2). Page: P rows of 576 B (448 fp8 NoPE | 64 bf16 RoPE), then P rows of 8 B
// (7 ue8m0 scales + 1 pad byte); the page is padded up to a multiple of 576 B.
struct Model1 {
  static constexpr int value_row_bytes = 576;
  static constexpr int scale_row_bytes = 8;
  static constexpr int token_bytes = value_row_bytes + scale_row_bytes;  // 584
  static constexpr int dim_qk = 512;
  static constexpr int dim_v = 512;
  static constexpr int nope_dims = 448;
  static constexpr int rope_dims = 64;
  static constexpr int tile_dims = 64;  // one ue8m0 scale per 64 NoPE dims
  static constexpr int num_scales = 7;
  static constexpr int scale_bytes = 1;  // ue8m0
  DSA_HD static constexpr std::int64_t page_bytes(std::int64_t page_tokens) {
    return round_up(page_tokens * token_bytes, value_row_bytes);
  }
  DSA_HD static constexpr std::int64_t dim_offset(std::int64_t t, int d) {
    return d < nope_dims ? t * value_row_bytes + d
                         : t * value_row_bytes + nope_dims + 2 * (d - nope_dims);
  }
  DSA_HD static constexpr std::int64_t scale_offset(std::int64_t page_tokens, std::int64_t t, int k) {
    return page_tokens * value_row_bytes + t * scale_row_bytes + k;
  }
};

// MODEL1_SPLIT: the same rows, values and scales in two tensors.
struct Model1Split {
  static constexpr int value_row_bytes = Model1::value_row_bytes;
  static constexpr int scale_row_bytes = Model1::scale_row_bytes;
  DSA_HD static constexpr std::int64_t page_bytes(std::int64_t page_tokens) {
    return page_tokens * value_row_bytes;
  }
  DSA_HD static constexpr std::int64_t scale_page_bytes(std::int64_t page_tokens) {
    return page_tokens * scale_row_bytes;
  }
  DSA_HD static constexpr std::int64_t dim_offset(std::int64_t t, int d) { return Model1::dim_offset(t, d); }
  // Offset in the scale tensor's page.
  DSA_HD static constexpr std::int64_t scale_offset(std::int64_t t, int k) { return t * scale_row_bytes + k; }
};

// BF16 rows of `dim_qk` elements (SPEC §2.3), paged like the others (a dense [N][D] tensor is
// one page of N tokens).
struct Bf16 {
  DSA_HD static constexpr std::int64_t page_bytes(std::int64_t page_tokens, int dim_qk) {
    return page_tokens * 2 * dim_qk;
  }
  DSA_HD static constexpr std::int64_t dim_offset(std::int64_t t, int d, int dim_qk) {
    return (t * dim_qk + d) * 2;
  }
};

}  // namespace layout

DSA_HD constexpr int mla_dim_qk(MlaLayout l, int bf16_dim_qk = 576) {
  return l == MlaLayout::V32 ? layout::V32::dim_qk
         : l == MlaLayout::BF16 ? bf16_dim_qk
                                : layout::Model1::dim_qk;
}
DSA_HD constexpr int mla_dim_v() { return 512; }

// ----------------------------------------------------------------------------------------------
// Indexer K cache (SPEC §6.1). A page: P·D fp8 values, then P fp32 scales at P·D + 4t.
enum class IndexKLayout : std::uint8_t {
  standard,    // DeepGEMM: value (t, d) at t·D + d
  preshuffle,  // aiter: tiles of 16 tokens × 16 bytes
};

inline const char* to_string(IndexKLayout l) {
  return l == IndexKLayout::standard ? "standard" : "preshuffle";
}

namespace layout {

struct IndexK {
  DSA_HD static constexpr std::int64_t min_page_bytes(std::int64_t page_tokens, int head_dim) {
    return page_tokens * (head_dim + 4);
  }
  DSA_HD static constexpr std::int64_t standard_offset(int head_dim, std::int64_t t, int d) {
    return t * head_dim + d;
  }
  // (t/16)·16·D + (d/16)·256 + (t%16)·16 + d%16: the page is a sequence of 16-token groups;
  // inside a group, 16×16-byte tiles follow each other along d, each tile row-major in (t, d).
  DSA_HD static constexpr std::int64_t preshuffle_offset(int head_dim, std::int64_t t, int d) {
    return (t / 16) * 16 * head_dim + (d / 16) * 256 + (t % 16) * 16 + (d % 16);
  }
  DSA_HD static constexpr std::int64_t value_offset(IndexKLayout l, int head_dim, std::int64_t t, int d) {
    return l == IndexKLayout::standard ? standard_offset(head_dim, t, d) : preshuffle_offset(head_dim, t, d);
  }
  DSA_HD static constexpr std::int64_t scale_offset(std::int64_t page_tokens, int head_dim, std::int64_t t) {
    return page_tokens * head_dim + 4 * t;
  }
};

}  // namespace layout
}  // namespace dsa
