// Cases of every op as owning structs: seeded random generation (the self-checks, `dsa-oracle
// make-case`, the tests), conversion to and from case files (each op's schema: tensor names,
// dtypes, symbolic shapes, parameters under metadata "dsa"), and checking a case file's kernel
// outputs (`dsa-oracle check`). Per-op code lives in src/<op>_case.cpp; the file format is in
// oracle/README-case-files.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsa/case_file.hpp"
#include "dsa/judge.hpp"
#include "dsa/sparse_mla_case.hpp"

namespace dsa {

// Knobs of a random case; every unset knob is drawn from the seed. Strings are the spellings of
// the case-file parameters (README-case-files.md).
struct RandomCaseSpec {
  std::uint64_t seed = 1;
  std::optional<std::string> layout;  // MLA: V32 | MODEL1 | MODEL1_SPLIT | BF16 | BF16-512; index K: standard | preshuffle
  std::optional<std::string> fp8;     // e4m3fn | e4m3fnuz
  std::optional<std::int64_t> B, S_q, H, topk, page_tokens, num_blocks;
  std::optional<std::int64_t> next_n, head_dim, max_ctx, S_kv, rows, width, k;
  std::optional<std::string> index_mode;    // physical | logical
  std::optional<bool> extra;                // decode: an extra cache
  std::optional<bool> lengths;              // topk_length given
  std::optional<std::string> sink;          // none | finite | inf (finite values and ±inf entries)
  std::optional<std::string> reader;        // staged_bf16 | flashmla_sm90 | flashmla_sm100 | exact_fp32
  std::optional<std::string> conventions;   // flashmla | xkernels | flashmla_prefill_2025
  std::optional<std::string> scale_policy;  // pow2_ceil | fp32 (V32)
  std::optional<std::string> k_scale_at;    // after_head_sum | per_head | on_k_bf16
  std::optional<std::string> context_lens;  // per_sequence | per_row
  // Cache tokens that no valid slot selects (and index-K tokens no row sees) hold NaN codes, so a
  // kernel that reads them fails (SPEC §10.4).
  bool poison = true;
};

// ---- owning cases ------------------------------------------------------------------------------
// SparseMlaDecodeCase and SparseMlaPrefillCase: dsa/sparse_mla_case.hpp (shared with the tests).

struct PagedMqaLogitsCase {
  std::int64_t batch = 1, next_n = 1, num_heads = 1, head_dim = 32;
  std::vector<std::uint8_t> q;  // fp8 codes [B][N][H][D]
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  std::vector<float> weights;   // [B·N][H]
  ContextLens context_lens_kind = ContextLens::per_sequence;
  std::vector<std::int32_t> context_lens;
  std::vector<std::int32_t> block_table;
  std::int64_t max_blocks = 0;
  IndexKCacheBuffer cache{IndexKGeometry::packed(IndexKLayout::standard, Fp8Format::e4m3fn, 0, 16, 32)};
  KScaleAt k_scale_at = KScaleAt::after_head_sum;
  std::int64_t max_ctx = 0;

  std::int64_t rows() const { return batch * next_n; }
  // Inputs, writing `logits` [B·N][row_stride] (may be empty for judging).
  PagedMqaLogitsParams params(std::span<float> logits = {}, std::int64_t row_stride = 0) const;
};

struct MqaLogitsCase {
  std::int64_t seq_len = 1, seq_len_kv = 1, num_heads = 1, head_dim = 32;
  std::vector<std::uint8_t> q;  // [S][H][D]
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  std::vector<std::uint8_t> k;  // [S_kv][D]
  Fp8Format k_fp8 = Fp8Format::e4m3fn;
  std::vector<float> k_scales;  // [S_kv]
  std::vector<float> weights;   // [S][H]
  std::vector<std::int32_t> ks, ke;
  KScaleAt k_scale_at = KScaleAt::after_head_sum;

  MqaLogitsParams params(std::span<float> logits = {}, std::int64_t row_stride = 0) const;
};

struct TopkCase {
  std::int64_t rows = 1, width = 1, k = 1;
  std::vector<float> logits;          // [rows][width]
  std::vector<VisibleRange> ranges;   // [rows]
};

SparseMlaDecodeCase random_sparse_mla_decode_case(const RandomCaseSpec& spec);
SparseMlaPrefillCase random_sparse_mla_prefill_case(const RandomCaseSpec& spec);
PagedMqaLogitsCase random_paged_mqa_logits_case(const RandomCaseSpec& spec);
MqaLogitsCase random_mqa_logits_case(const RandomCaseSpec& spec);
TopkCase random_topk_case(const RandomCaseSpec& spec);

// ---- case files ---------------------------------------------------------------------------------
// Each op's schema: inputs (required or optional), the kernel's outputs (optional) and the gold
// outputs ("gold.<name>", optional, never judged). Cache tensors are byte-structured: their shape
// is free, their byte count is checked against the geometry in the parameters.
Schema op_schema(Op op);

// Inputs and parameters as a case file (params holds op, geometry, conventions, seed, ...).
// `judging` (precision, claims, sentinel, write contract) is merged into the parameters.
CaseFile to_case_file(const SparseMlaDecodeCase& c, const nlohmann::json& judging = nlohmann::json::object());
CaseFile to_case_file(const SparseMlaPrefillCase& c, const nlohmann::json& judging = nlohmann::json::object());
CaseFile to_case_file(const PagedMqaLogitsCase& c, const nlohmann::json& judging = nlohmann::json::object());
CaseFile to_case_file(const MqaLogitsCase& c, const nlohmann::json& judging = nlohmann::json::object());
CaseFile to_case_file(const TopkCase& c, const nlohmann::json& judging = nlohmann::json::object());

// The inverse. Throws CaseFileError naming the file, the tensor and the rule.
SparseMlaDecodeCase sparse_mla_decode_case_from_file(const CaseFile& f);
SparseMlaPrefillCase sparse_mla_prefill_case_from_file(const CaseFile& f);
PagedMqaLogitsCase paged_mqa_logits_case_from_file(const CaseFile& f);
MqaLogitsCase mqa_logits_case_from_file(const CaseFile& f);
TopkCase topk_case_from_file(const CaseFile& f);

// The op a case file holds (params "op"); throws CaseFileError when missing or unknown.
Op case_op(const CaseFile& f);

// `dsa-oracle make-case`: a random case of `op`, optionally with outputs: "gold" (gold rounded
// like a kernel's outputs, so `check` passes on it) or "fast" (the CPU fast path's), plus the gold
// outputs in fp64 under "gold.<name>" when `with_gold_tensors`.
CaseFile make_case_file(Op op, const RandomCaseSpec& spec, const std::string& outputs = "none",
                        bool with_gold_tensors = false);

// `dsa-oracle check`: judges the kernel outputs of a case. They are read from `outputs` when given,
// else from the case file itself. `overrides` (same keys as the parameters: "precision",
// "claims", "write_contract", ...) take precedence over the file's parameters. Throws
// CaseFileError / InvalidArgument for a malformed case (the CLI's exit 2).
CaseResult check_case(const CaseFile& inputs, const CaseFile* outputs,
                      const nlohmann::json& overrides = nlohmann::json::object());

// The judging options of a case: parameters merged with overrides (precision preset or object,
// claims, sentinel, write contract, top-k order).
JudgeOptions judge_options_from_json(const nlohmann::json& params, Op op);

}  // namespace dsa
