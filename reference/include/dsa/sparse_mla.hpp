// Sparse MLA attention (SPEC §4 decode, §5 prefill): the problem descriptions, their validation
// (SPEC §8) and the CPU implementations — `gold` (fp64, plain loops) and `fast` (fp32, Eigen +
// OpenMP: fused, staged and split-KV, sharing one engine).
//
// Shapes are written [outer]…[inner]; every tensor is contiguous in that order. bf16 tensors are
// held as their uint16 codes. T = B·S_q query rows; D_qk comes from the primary cache's layout
// (576 for V32 / BF16-576, 512 for MODEL1 / MODEL1_SPLIT / BF16-512), D_v = 512.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/mla_slots.hpp"
#include "dsa/reader_model.hpp"

namespace dsa {

// SPEC §9 conventions of the returned lse. The defaults are the project's (FlashMLA's).
enum class LseEmpty : std::uint8_t { pos_inf, neg_inf };  // lse of a row with no valid slot
enum class LseBase : std::uint8_t { e, two };             // natural log, or log2

struct MlaConventions {
  LseEmpty lse_empty = LseEmpty::pos_inf;
  bool sink_in_lse = false;  // returned lse = ln(Σ exp z + exp sink) instead of ln Σ exp z
  LseBase lse_base = LseBase::e;

  static constexpr MlaConventions flashmla() { return {}; }
  static constexpr MlaConventions xkernels() { return {LseEmpty::neg_inf, true, LseBase::e}; }
  static constexpr MlaConventions flashmla_prefill_2025() { return {LseEmpty::pos_inf, false, LseBase::two}; }
  friend constexpr bool operator==(const MlaConventions&, const MlaConventions&) = default;
};

// ----------------------------------------------------------------------------------------------
// SPEC §4. Argument names in errors are the field names below ("indices", "extra_cache.page_tokens").
struct SparseMlaDecodeParams {
  std::span<const std::uint16_t> q;  // bf16 [B][S_q][H][D_qk]
  std::int64_t B = 0;
  std::int64_t S_q = 1;
  std::int32_t H = 0;
  IndexMode index_mode = IndexMode::physical;  // for both caches

  // Primary cache and its selection.
  MlaCacheView cache;                          // any layout; fixes D_qk
  std::span<const std::int32_t> block_table;   // int32 [B][max_blocks]; logical mode only (else empty)
  std::int64_t max_blocks = 0;                 // row length of block_table
  std::span<const std::int32_t> indices;       // int32 [B][S_q][topk]
  std::int32_t topk = 0;
  std::span<const std::int32_t> topk_length;   // int32 [B], optional: slot j valid only if j < topk_length[b]

  // Optional extra cache (SPEC §4), used (and validated) iff extra_topk > 0: its own layout (same
  // D_qk as the primary), page size and block table; one softmax over primary and extra slots.
  MlaCacheView extra_cache;
  std::span<const std::int32_t> extra_block_table;  // int32 [B][extra_max_blocks]; logical mode only
  std::int64_t extra_max_blocks = 0;
  std::span<const std::int32_t> extra_indices;      // int32 [B][S_q][extra_topk]
  std::int32_t extra_topk = 0;
  std::span<const std::int32_t> extra_topk_length;  // int32 [B], optional

  std::span<const float> attn_sink;  // fp32 [H], optional; ±inf allowed
  float sm_scale = 0.0f;             // 0 → D_qk^−1/2 rounded to fp32
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;
};

// SPEC §5. `kv` is addressed physically: slot valid iff 0 ≤ idx < S_kv = kv.geo.capacity_tokens().
// A dense bf16 [S_kv][D_qk] tensor is the BF16 cache of dense_bf16_kv().
struct SparseMlaPrefillParams {
  std::span<const std::uint16_t> q;  // bf16 [S_q][H][D_qk]
  std::int64_t S_q = 0;
  std::int32_t H = 0;
  MlaCacheView kv;                            // any layout; fixes D_qk
  std::span<const std::int32_t> indices;      // int32 [S_q][topk]
  std::int32_t topk = 0;
  std::span<const std::int32_t> topk_length;  // int32 [S_q], optional
  std::span<const float> attn_sink;           // fp32 [H], optional
  float sm_scale = 0.0f;                      // 0 → D_qk^−1/2 rounded to fp32
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;
};

// Outputs of both operations (T = B·S_q for decode, S_q for prefill).
struct SparseMlaOutputs {
  std::span<std::uint16_t> out;  // bf16 [T][H][D_v]
  std::span<float> lse;          // fp32 [T][H], optional (empty: not written)
  std::span<float> max_logits;   // fp32 [T][H], optional; max_j z_j in natural units, −inf if empty
};

// A dense bf16 [rows][dim_qk] tensor as a BF16 cache of one page (dim_qk 576 or 512).
MlaCacheView dense_bf16_kv(std::span<const std::uint16_t> rows, std::int64_t num_rows, int dim_qk);

// The fp32 scale actually used: sm_scale, or D_qk^−1/2 rounded to fp32 when it is 0.
float effective_sm_scale(float sm_scale, int dim_qk);

// SPEC §8: shapes, sizes, layouts, page sizes and modes, before any data is touched. Index,
// length and block-table *values* are data (invalid slots), never errors. Throws InvalidArgument.
void validate(const SparseMlaDecodeParams& p);
void validate(const SparseMlaPrefillParams& p);
void validate(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o);
void validate(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o);

// ----------------------------------------------------------------------------------------------
// gold: fp64 from the operands the reader model produces, the formulas of SPEC §4/§5 as they read.
struct SparseMlaGoldStats;  // per-element inputs of the interim bound (sparse_mla_interim_bound.hpp)

struct SparseMlaGold {
  std::int64_t T = 0;
  std::int32_t H = 0;
  int D_v = 512;
  std::vector<double> out;         // [T][H][D_v], after the sink, before any rounding
  std::vector<double> lse;         // [T][H], per the conventions (base, sink, empty)
  std::vector<double> max_logits;  // [T][H], natural units, −inf for an empty row
};

// fp64 results; when `stats` is given it is filled with what the interim bound needs.
SparseMlaGold sparse_mla_decode_gold(const SparseMlaDecodeParams& p, SparseMlaGoldStats* stats = nullptr);
SparseMlaGold sparse_mla_prefill_gold(const SparseMlaPrefillParams& p, SparseMlaGoldStats* stats = nullptr);
// The same, rounded like a kernel's outputs: out RNE to bf16, lse and max_logits to fp32.
void sparse_mla_decode_gold(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o);
void sparse_mla_prefill_gold(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o);
void round_gold_outputs(const SparseMlaGold& g, const SparseMlaOutputs& o);

// fp64 → bf16 with one RNE rounding (no double rounding through fp32).
std::uint16_t f64_to_bf16(double x);

// ----------------------------------------------------------------------------------------------
// fast: fp32, Eigen + OpenMP, one engine structured like the GPU algorithms.
enum class MlaFastAlgo : std::uint8_t {
  fused,   // reads the paged cache inside the attention loop; no staging buffer
  staged,  // gather + dequantize every selected row into a bf16 workspace, then sparse_mla_attention
};
inline const char* to_string(MlaFastAlgo a) { return a == MlaFastAlgo::fused ? "fused" : "staged"; }

struct SparseMlaFastOptions {
  MlaFastAlgo algo = MlaFastAlgo::fused;
  // Split-KV chunks of the slot axis: 0 = choose_cpu_num_splits(); 1 = single pass (which is
  // exactly the combine of one partial); N ≥ 1 = N chunks, combined per SPEC §4.
  int num_splits = 0;
};

// Keys per tile of the online softmax and query heads per work item: fixed, so that results do
// not depend on the thread count; staged and fused share them and are therefore bit-identical
// under a reader model whose operands are bf16. A head group of 128 covers every head of the
// DeepSeek models, so each selected token is dequantized once per query row (the rows × 128 heads
// share the K tile, as on the GPU); a single row gets its parallelism from split-KV instead.
inline constexpr int kMlaTileSlots = 64;
inline constexpr int kMlaHeadGroup = 128;

// Split count when options.num_splits == 0: 1 when rows × head groups already give every thread
// work; otherwise enough chunks to do so, keeping at least two key tiles per chunk.
int choose_cpu_num_splits(std::int64_t rows, std::int32_t heads, std::int64_t slots_per_row, int threads);

void sparse_mla_decode_fast(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o,
                            const SparseMlaFastOptions& options = {});
void sparse_mla_prefill_fast(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o,
                             const SparseMlaFastOptions& options = {});

// The staged path's two steps as public entry points.
// 1. Gather + dequantize (reader model, then bf16 RNE — the workspace is bf16, so the staged path
//    is the reader model with operand = bf16) every valid selected row of every query row into
//    rows [T][topk + extra_topk][D_qk]; rebuilt indices [T][topk + extra_topk] are
//    r·(topk + extra_topk) + j for a valid slot j of row r and −1 otherwise. Rows of invalid
//    slots stay zero and are never read.
struct MlaStagedKv {
  std::int64_t T = 0;
  std::int32_t slots = 0;  // topk + extra_topk
  int dim_qk = 576;
  std::vector<std::uint16_t> rows;    // bf16 [T][slots][D_qk]
  std::vector<std::int32_t> indices;  // int32 [T][slots]
  MlaCacheView kv() const { return dense_bf16_kv(rows, T * slots, dim_qk); }
};
MlaStagedKv sparse_mla_stage(const SparseMlaDecodeParams& p);

// 2. Attention over materialized bf16 rows (the prefill form with p.kv a BF16 cache; −1 or any
//    out-of-range index is an invalid slot).
void sparse_mla_attention(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o,
                          const SparseMlaFastOptions& options = {});

}  // namespace dsa
