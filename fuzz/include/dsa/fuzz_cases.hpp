// Fuzz cases (issue 6.2): for every op, a *spec* — the small, shrinkable description the
// generators draw (shapes, page sizes, tables, index values, lengths, conventions) plus one seed —
// and the owning *case* built from it deterministically (caches written by the project's writers,
// bulk values from the seed, every cache row no valid slot selects poisoned with NaN codes). A
// case is also what a case file holds (corpus.hpp), so a case read back from disk replays exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/kernel_under_test.hpp"
#include "dsa/mqa_logits.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/quantize.hpp"
#include "dsa/sparse_mla.hpp"

namespace dsa::fuzz {

// How the bulk values of a case are drawn (from its seed).
enum class ValueStyle : std::uint8_t {
  normal,    // scaled normals, per-token amplitudes over ~7 binades
  offset,    // scaled normals plus a per-token offset (one-sided tiles, peaky softmax)
  extremes,  // per tile: all-zero, ±amax (→ ±fmax codes), one large element over tiny ones (→ subnormal codes)
};
// Row patterns applied over the drawn index values of one query row.
enum class RowPattern : std::uint8_t {
  as_drawn,          // the drawn values (duplicates and invalid values mixed in)
  unique,            // valid values made distinct
  leading_invalid,   // slots [0, at) invalid: a fully masked leading chunk when at ≥ the tile
  trailing_padding,  // slots [at, topk) invalid (−1 padding)
  all_invalid,       // nothing valid: an empty row
  single_valid,      // exactly slot `at` valid
};
enum class SinkKind : std::uint8_t { none, finite, infinite_mix };
// Logical-mode block tables and paged indexer tables.
enum class TableStyle : std::uint8_t {
  permutation,   // a random permutation of the pool (unused pages where the pool is larger)
  aliasing,      // entries drawn with replacement: two entries may name one block
  with_invalid,  // a permutation with −1, num_blocks, INT_MIN, INT_MAX mixed in (MLA only)
};

const char* to_string(ValueStyle v);
const char* to_string(RowPattern v);
const char* to_string(SinkKind v);
const char* to_string(TableStyle v);

// The int32 edge set every selection mixes in (SPEC §3): never valid, whatever the cache.
std::vector<std::int32_t> invalid_index_edges(std::int64_t range);

// ---------------------------------------------------------------------------------------------
// Sparse MLA.
struct MlaSelectionSpec {
  MlaLayout layout = MlaLayout::V32;
  int bf16_dim_qk = 576;
  Fp8Format fp8 = Fp8Format::e4m3fn;
  ScalePolicy scale_policy = ScalePolicy::pow2_ceil;  // V32 only; MODEL1 scales are ue8m0
  std::int32_t page_tokens = 16;
  std::int64_t num_blocks = 2;
  std::int64_t stride_pad = 0;  // bytes between blocks beyond the page
  std::int32_t topk = 0;
  std::int64_t max_blocks = 0;  // logical mode: block-table row length
  TableStyle table = TableStyle::permutation;
  std::vector<std::int32_t> codes;          // [rows][topk] drawn index values
  std::vector<RowPattern> patterns;         // [rows]
  std::vector<std::int32_t> pattern_at;     // [rows]
  std::vector<std::int32_t> lengths;        // [B] decode, [S_q] prefill; empty = no lengths
};

struct DecodeSpec {
  std::int64_t B = 1, S_q = 1;
  std::int32_t H = 1;
  IndexMode mode = IndexMode::physical;
  MlaSelectionSpec primary;
  std::optional<MlaSelectionSpec> extra;
  SinkKind sink = SinkKind::none;
  float sm_scale = 0.0f;
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;
  InvalidIndices invalid = InvalidIndices::any_out_of_range;
  int num_splits = 1;
  ValueStyle values = ValueStyle::normal;
  std::uint64_t seed = 1;
};

struct PrefillSpec {
  std::int64_t S_q = 1;
  std::int32_t H = 1;
  MlaSelectionSpec kv;  // addressed physically; lengths are per row
  SinkKind sink = SinkKind::none;
  float sm_scale = 0.0f;
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;
  InvalidIndices invalid = InvalidIndices::any_out_of_range;
  int num_splits = 1;
  ValueStyle values = ValueStyle::normal;
  std::uint64_t seed = 1;
};

// One owned cache with its selection.
struct MlaSelectionCase {
  MlaCacheBuffer cache{MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 0, 1)};
  std::vector<std::int32_t> block_table;  // [B][max_blocks], logical mode
  std::int64_t max_blocks = 0;
  std::vector<std::int32_t> indices;      // [rows][topk]
  std::int32_t topk = 0;
  std::vector<std::int32_t> lengths;
};

struct DecodeCase {
  std::string profile = "project";
  std::int64_t B = 1, S_q = 1;
  std::int32_t H = 1;
  IndexMode mode = IndexMode::physical;
  MlaSelectionCase primary;
  std::optional<MlaSelectionCase> extra;
  std::vector<std::uint16_t> q;  // bf16 [B][S_q][H][D_qk]
  std::vector<float> sink;       // [H] or empty
  float sm_scale = 0.0f;
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;
  int num_splits = 1;
  std::uint64_t seed = 0;

  std::int64_t T() const { return B * S_q; }
  std::int64_t slots() const { return primary.topk + (extra ? extra->topk : 0); }
  SparseMlaDecodeParams params() const;
  std::string describe() const;
};

struct PrefillCase {
  std::string profile = "project";
  std::int64_t S_q = 1;
  std::int32_t H = 1;
  MlaSelectionCase kv;
  std::vector<std::uint16_t> q;  // bf16 [S_q][H][D_qk]
  std::vector<float> sink;
  float sm_scale = 0.0f;
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;
  int num_splits = 1;
  std::uint64_t seed = 0;

  std::int64_t T() const { return S_q; }
  std::int64_t slots() const { return kv.topk; }
  SparseMlaPrefillParams params() const;
  std::string describe() const;
};

DecodeCase build(const DecodeSpec& s);
PrefillCase build(const PrefillSpec& s);

// Owned outputs pre-filled with the judge's sentinels (kSentinelBf16, kSentinelF32).
struct MlaOutputs {
  std::vector<std::uint16_t> out;
  std::vector<float> lse, max_logits;
  MlaOutputs(std::int64_t T, std::int32_t H, bool with_max_logits, int D_v = 512);
  SparseMlaOutputs view() { return {out, lse, max_logits}; }
  SparseMlaKernelOutputs judged() const { return {out, lse, max_logits}; }
  bool same_bits(const MlaOutputs& o) const;
  std::string first_difference(const MlaOutputs& o) const;  // "" when identical
};

// Poisons token (block, t) of an MLA cache: NaN codes and scales in every byte a reader uses.
using dsa::poison_mla_token;

// SPEC §3 restated for the fuzzer (independently of the library's resolver): the token that slot
// j of row r selects, or an invalid ref. Row r belongs to sequence r / rows_per_batch.
struct TokenRef {
  std::int64_t block = -1;
  std::int32_t t = 0;
  bool valid() const { return block >= 0; }
};
TokenRef resolve(const MlaSelectionCase& s, IndexMode mode, std::int64_t r, std::int64_t rows_per_batch,
                 std::int32_t j);
// Slots of row r that are eligible (j < topk_length, clamped to [0, topk]).
std::int32_t eligible(const MlaSelectionCase& s, std::int64_t r, std::int64_t rows_per_batch);

// ---------------------------------------------------------------------------------------------
// Indexer.
struct PagedLogitsSpec {
  std::int64_t B = 1, N = 1, H = 1, D = 32;
  std::int32_t page_tokens = 16;
  IndexKLayout layout = IndexKLayout::standard;
  Fp8Format fp8 = Fp8Format::e4m3fn;
  ContextLens kind = ContextLens::per_sequence;
  KScaleAt k_scale_at = KScaleAt::after_head_sum;
  std::vector<std::int32_t> context_lens;  // [B] or [B][N]
  std::int64_t max_ctx_slack = 0;
  std::int64_t stride_slack = 0;     // logits row stride − max_ctx
  std::int64_t block_pad_words = 0;  // block stride − page bytes, in 4-byte words
  std::int64_t spare_blocks = 1;     // pool blocks no sequence uses (poisoned)
  TableStyle table = TableStyle::permutation;
  bool ue8m0_scales = false;
  ValueStyle values = ValueStyle::normal;
  std::uint64_t seed = 1;
};

struct PagedLogitsCase {
  std::string profile = "project";
  std::int64_t B = 1, N = 1, H = 1, D = 32;
  std::vector<std::uint8_t> q;  // fp8 [B][N][H][D]
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  std::vector<float> weights;   // [B·N][H]
  ContextLens kind = ContextLens::per_sequence;
  std::vector<std::int32_t> context_lens;
  std::vector<std::int32_t> block_table;
  std::int64_t max_blocks = 0;
  IndexKCacheBuffer cache{IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, 0, 16, 16)};
  KScaleAt k_scale_at = KScaleAt::after_head_sum;
  std::int64_t max_ctx = 0, row_stride = 0;
  std::uint64_t seed = 0;

  // Params over `logits` (sized rows·row_stride by the caller).
  PagedMqaLogitsParams params(std::span<float> logits) const;
  std::int64_t rows() const { return B * N; }
  std::string describe() const;
};
PagedLogitsCase build(const PagedLogitsSpec& s);

struct MqaLogitsSpec {
  std::int64_t S = 1, S_kv = 1, H = 1, D = 32;
  Fp8Format fp8 = Fp8Format::e4m3fn;
  KScaleAt k_scale_at = KScaleAt::after_head_sum;
  std::vector<std::int32_t> ks, ke;  // [S]
  std::int64_t stride_slack = 0;
  bool ue8m0_scales = false;
  ValueStyle values = ValueStyle::normal;
  std::uint64_t seed = 1;
};

struct MqaLogitsCase {
  std::string profile = "project";
  std::int64_t S = 1, S_kv = 1, H = 1, D = 32;
  std::vector<std::uint8_t> q, k;  // fp8 [S][H][D], [S_kv][D]
  Fp8Format fp8 = Fp8Format::e4m3fn;
  std::vector<float> k_scales, weights;
  std::vector<std::int32_t> ks, ke;
  KScaleAt k_scale_at = KScaleAt::after_head_sum;
  std::int64_t row_stride = 0;
  std::uint64_t seed = 0;

  MqaLogitsParams params(std::span<float> logits) const;
  std::int64_t rows() const { return S; }
  std::string describe() const;
};
MqaLogitsCase build(const MqaLogitsSpec& s);

// ---------------------------------------------------------------------------------------------
// Top-k over given logits.
enum class LogitStyle : std::uint8_t {
  distinct,  // continuous values
  ties,      // a few distinct values (many ties at the k-th value)
  specials,  // ties plus NaN, ±inf, ±0
};
const char* to_string(LogitStyle v);

struct TopkSpec {
  std::int64_t rows = 1, width = 1, stride_slack = 0, k = 1;
  std::vector<std::int64_t> begin, end;  // [rows] visible ranges within [0, width)
  LogitStyle style = LogitStyle::distinct;
  std::uint64_t seed = 1;
};

struct TopkCase {
  std::string profile = "project";
  std::int64_t rows = 1, row_stride = 1, k = 1;
  std::vector<float> logits;  // [rows][row_stride]
  std::vector<VisibleRange> ranges;
  std::uint64_t seed = 0;
  std::string describe() const;
};
TopkCase build(const TopkSpec& s);

// RapidCheck prints counterexamples through these (found by argument-dependent lookup).
void showValue(const DecodeSpec& s, std::ostream& os);
void showValue(const PrefillSpec& s, std::ostream& os);
void showValue(const PagedLogitsSpec& s, std::ostream& os);
void showValue(const MqaLogitsSpec& s, std::ostream& os);
void showValue(const TopkSpec& s, std::ostream& os);

}  // namespace dsa::fuzz
