// Private to oracle/src: what the per-op case files (src/<op>_case.cpp) share — the spellings of
// enums in case parameters, parameter and tensor access that fails with a CaseFileError naming
// the file, random fills, index mixes with invalid values, and cache poisoning.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsa/case_file.hpp"
#include "dsa/op_cases.hpp"
#include "dsa/quantize.hpp"

namespace dsa::detail {

using json = nlohmann::json;

// ---- parameter spellings ------------------------------------------------------------------------
MlaLayout mla_layout_from(const std::string& s, const std::string& where);
Fp8Format fp8_from(const std::string& s, const std::string& where);
IndexMode index_mode_from(const std::string& s, const std::string& where);
IndexKLayout index_k_layout_from(const std::string& s, const std::string& where);
KScaleAt k_scale_at_from(const std::string& s, const std::string& where);
ContextLens context_lens_from(const std::string& s, const std::string& where);
WriteContract write_contract_from(const std::string& s, const std::string& where);
ScalePolicy scale_policy_from(const std::string& s, const std::string& where);

// Reader models and conventions: a preset name or an object of their fields.
ReaderModel reader_from(const json& j, const std::string& where);
json reader_to_json(const ReaderModel& r);
MlaConventions conventions_from(const json& j, const std::string& where);
json conventions_to_json(const MlaConventions& c);

// ---- parameters of a case file ------------------------------------------------------------------
// A CaseFileError for the case file `f` as a whole ("" tensor) or a tensor.
[[noreturn]] void fail(const CaseFile& f, const std::string& tensor, const std::string& rule);

// Typed access to params[key]: throws a CaseFileError "parameter '<key>': ..." on a wrong type.
std::optional<std::int64_t> get_int(const CaseFile& f, const json& j, const std::string& key);
std::int64_t need_int(const CaseFile& f, const json& j, const std::string& key);
std::optional<double> get_double(const CaseFile& f, const json& j, const std::string& key);
std::optional<std::string> get_string(const CaseFile& f, const json& j, const std::string& key);
std::optional<bool> get_bool(const CaseFile& f, const json& j, const std::string& key);

// The parameters of `f` (a JSON object) with "op" equal to `op`.
json op_params(const CaseFile& f, Op op);

// ---- tensors ------------------------------------------------------------------------------------
template <class T>
void add_tensor(CaseFile& f, std::string name, std::vector<std::int64_t> shape, const std::vector<T>& v,
                DType dtype = dtype_of<T>) {
  f.add(std::move(name), std::move(shape), std::span<const T>(v), dtype);
}

// Tensors the op's schema does not name (and are not "gold.*") are an error.
void reject_unknown_tensors(const CaseFile& f, const Schema& schema);

// MLA cache geometry from the parameter object at params[key] and the byte tensors `values` (and
// `scales` for MODEL1_SPLIT); then the owning buffer with the tensors' bytes. Geometry fields:
// layout (required), fp8, page_tokens, num_blocks, block_stride_bytes, scale_block_stride_bytes,
// bf16_dim_qk; missing ones are taken from the tensor's shape ([num_blocks][P][...]) or packed.
MlaCacheBuffer mla_cache_from(const CaseFile& f, const json& geo, const std::string& values,
                              const std::string& scales);
json mla_geometry_to_json(const MlaCacheGeometry& g);
void add_mla_cache(CaseFile& f, const MlaCacheBuffer& c, const std::string& values, const std::string& scales);

// Index-K cache geometry (layout, fp8, page_tokens, num_blocks, head_dim, block_stride_bytes).
IndexKCacheBuffer index_k_cache_from(const CaseFile& f, const json& geo, const std::string& values);
json index_k_geometry_to_json(const IndexKGeometry& g);

// ---- random cases -------------------------------------------------------------------------------
using Rng = std::mt19937_64;

template <class T>
T pick(Rng& rng, std::initializer_list<T> xs) {
  return *(xs.begin() + static_cast<std::ptrdiff_t>(rng() % xs.size()));
}
std::int64_t uniform_int(Rng& rng, std::int64_t lo, std::int64_t hi);  // [lo, hi]

// bf16 codes of uniform values in [−amp, amp].
std::vector<std::uint16_t> random_bf16(Rng& rng, std::int64_t n, float amp);
// Writes every token of `c` from random rows whose amplitude varies per token (so scales differ).
void fill_mla_cache(MlaCacheBuffer& c, Rng& rng, ScalePolicy policy);
// Token (block, t) becomes NaN in every byte a reader of it uses (fp8 NaN codes, NaN scales, bf16 NaN).
using dsa::poison_mla_token;

// Index values that are invalid whatever the cache (SPEC §3), mixed into every selection.
std::vector<std::int32_t> nasty_indices(std::int64_t range);

// One selection of B·S_q rows × topk slots: mostly valid values in [0, range), duplicates and
// invalid values; for logical mode a block table [B][max_blocks] with some invalid entries;
// optional lengths [B] in [−1, topk + 1] (clamped by the ops).
void random_selection(Rng& rng, std::int64_t B, std::int64_t S_q, std::int32_t topk, std::int64_t num_blocks,
                      std::int32_t page_tokens, IndexMode mode, std::int64_t max_blocks, bool lengths,
                      std::vector<std::int32_t>& block_table, std::vector<std::int32_t>& indices,
                      std::vector<std::int32_t>& topk_length);

// The tokens (block, t) the valid slots of a selection name (SPEC §3, via mla_slots.hpp).
using TokenSet = std::set<std::pair<std::int64_t, std::int32_t>>;
void referenced_tokens(const MlaCacheGeometry& g, IndexMode mode, const std::vector<std::int32_t>& block_table,
                       std::int64_t max_blocks, const std::vector<std::int32_t>& indices, std::int32_t topk,
                       const std::vector<std::int32_t>& lengths, std::int64_t rows, std::int64_t rows_per_batch,
                       TokenSet& out);
// Poisons every token of `c` not in `used`.
void poison_unreferenced(MlaCacheBuffer& c, const TokenSet& used);

// Random fp8 codes of values drawn from N(0, 1)·amp, never NaN.
std::vector<std::uint8_t> random_fp8(Rng& rng, std::int64_t n, Fp8Format f, float amp);

// The project's sentinels and the default judging parameters a generated case records.
json default_judging_json(Op op);

// ---- random MLA pieces (decode and prefill) -------------------------------------------------------
// `layout`: V32 | MODEL1 | MODEL1_SPLIT | BF16 | BF16-512; a random block-stride padding.
MlaCacheGeometry random_mla_geometry(Rng& rng, const std::string& layout, Fp8Format fp8, std::int32_t page,
                                     std::int64_t num_blocks);
// The knob, else a random layout of width dim_qk (0: any).
std::string random_mla_layout(Rng& rng, const std::optional<std::string>& knob, int dim_qk);
ReaderModel random_reader(Rng& rng, const std::optional<std::string>& knob);
MlaConventions random_conventions(Rng& rng, const std::optional<std::string>& knob);
std::vector<float> random_sink(Rng& rng, std::int32_t H, const std::optional<std::string>& knob);
float random_sm_scale(Rng& rng);
std::vector<std::uint16_t> random_query(Rng& rng, std::int64_t n);
Fp8Format random_fp8_format(Rng& rng, const std::optional<std::string>& knob);

// ---- attention outputs in case files --------------------------------------------------------------
// A kernel's outputs from `out_file` ("out" required, "lse" and "max_logits" optional), checked
// against the schema's output shapes with the inputs' bindings.
struct AttentionOutputs {
  std::vector<std::uint16_t> out;
  std::vector<float> lse, max_logits;
  SparseMlaKernelOutputs view() const { return {out, lse, max_logits}; }
};
AttentionOutputs read_attention_outputs(const CaseFile& out_file, const Schema& schema, const Bindings& bound);
// Adds "out", "lse" (and "max_logits") per `which`: "gold" (rounded like a kernel's outputs),
// "fast" (`fast` fills them), "none".
void add_attention_outputs(CaseFile& f, const SparseMlaGold& g, const std::vector<std::int64_t>& row_shape,
                           bool max_logits, const std::string& which,
                           const std::function<void(const SparseMlaOutputs&)>& fast);
// "gold.out", "gold.lse" (and "gold.max_logits") in fp64.
void add_attention_gold_tensors(CaseFile& f, const SparseMlaGold& g, const std::vector<std::int64_t>& row_shape,
                                bool max_logits);

// The schema less its byte-structured (free-shaped) cache tensors, for check_schema.
Schema without_caches(Schema s);

// ---- per-op entry points (src/<op>_case.cpp) ------------------------------------------------------
Schema sparse_mla_decode_schema();
Schema sparse_mla_prefill_schema();
Schema paged_mqa_logits_schema();
Schema mqa_logits_schema();
Schema topk_schema();
// Judges the kernel outputs held by `outs` for the inputs of `in`; `params` = merged parameters.
CaseResult check_sparse_mla_decode(const CaseFile& in, const CaseFile& outs, const json& params);
CaseResult check_sparse_mla_prefill(const CaseFile& in, const CaseFile& outs, const json& params);
CaseResult check_paged_mqa_logits(const CaseFile& in, const CaseFile& outs, const json& params);
CaseResult check_mqa_logits(const CaseFile& in, const CaseFile& outs, const json& params);
CaseResult check_topk(const CaseFile& in, const CaseFile& outs, const json& params);
CaseFile make_sparse_mla_decode(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors);
CaseFile make_sparse_mla_prefill(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors);
CaseFile make_paged_mqa_logits(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors);
CaseFile make_mqa_logits(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors);
CaseFile make_topk(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors);

}  // namespace dsa::detail
