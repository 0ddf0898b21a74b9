// Per-op judging (SPEC §10): for each operation, the fp64 gold outputs and a per-element budget
// computed from the case's own inputs with the op-independent cores of budget.hpp (derivation:
// oracle/BUDGETS.md), then the verdict on a kernel's outputs by compare(). One source file per op
// stem binds the cores to that op's params: src/sparse_mla_decode_budget.cpp,
// src/sparse_mla_prefill_budget.cpp, src/paged_mqa_logits_budget.cpp, src/mqa_logits_budget.cpp,
// src/topk_judge.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dsa/budget.hpp"
#include "dsa/compare.hpp"
#include "dsa/mqa_logits.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/report.hpp"
#include "dsa/sparse_mla.hpp"
#include "dsa/topk.hpp"
#include "dsa/write_contract.hpp"

namespace dsa {

// The operations a case can hold.
enum class Op : std::uint8_t { sparse_mla_decode, sparse_mla_prefill, paged_mqa_logits, mqa_logits, topk };
const char* to_string(Op op);
std::optional<Op> op_from_string(std::string_view s);
inline constexpr Op kAllOps[] = {Op::sparse_mla_decode, Op::sparse_mla_prefill, Op::paged_mqa_logits,
                                 Op::mqa_logits, Op::topk};

// Named precision promises (what `--precision` takes), per op:
//   bf16p    — fp32 accumulation that may truncate (u_acc = 2·u_fp32), P rounded to bf16 before
//              P·V (FlashMLA-style), ex2.approx (the KernelPrecision defaults);
//   fp32p    — the same with P kept in fp32;
//   fp8p     — P rounded to e4m3 before P·V;
//   fp32p-rn — fp32p with round-to-nearest accumulation (u_acc = u_fp32): a CPU's arithmetic, the
//              promise the self-check holds the project's own fast paths to.
// Attention outputs are bf16 (u_out = u_bf16); indexer logits are fp32 (u_out = u_fp32).
// Throws InvalidArgument("precision", ...) for an unknown name.
KernelPrecision kernel_precision(std::string_view preset, Op op);
inline constexpr const char* kPrecisionPresets[] = {"bf16p", "fp32p", "fp8p", "fp32p-rn"};

// What an attention kernel claims about its algorithm (BUDGETS.md §2.3, §2.8). 0 = unknown: the
// worst case is charged — kAnySplits chunks, and a rescale after every key (tile of one key).
struct AttentionClaims {
  int num_splits = 0;  // split-KV chunks of the slot axis (1 = no split)
  int tile_slots = 0;  // keys per online-softmax tile
};
inline constexpr int kAnySplits = 64;

struct JudgeOptions {
  KernelPrecision precision;
  AttentionClaims claims;
  // Bit patterns the output buffers held before the kernel ran: an element still holding one was
  // never written. bf16 outputs are checked against sentinel_bf16, fp32 ones against sentinel_f32.
  std::optional<std::uint16_t> sentinel_bf16;
  std::optional<std::uint32_t> sentinel_f32;
  // Indexer logits: which positions the kernel promises to define (SPEC §6.2, §9); the rest are
  // skipped. ceil_page rounds up to contract_page_tokens (0: the paged cache's page size; for
  // mqa_logits 0 means 64).
  WriteContract write_contract = WriteContract::all;
  std::int64_t contract_page_tokens = 0;
  // Top-k: the kernel claims the reference order of its selected positions.
  bool topk_stable_order = false;
};

// The sentinels the project's own harnesses fill output buffers with: NaNs with a payload that no
// arithmetic produces (an unwritten element can never pass as a computed NaN).
inline constexpr std::uint16_t kSentinelBf16 = 0x7FA5;
inline constexpr std::uint32_t kSentinelF32 = 0x7FA5A5A5u;

// ---- sparse MLA (decode SPEC §4, prefill SPEC §5) ------------------------------------------
// Gold in fp64 (the reference's sparse_mla_*_gold) and the budget of every output element.
// Budgets are 0 where the result is exact: empty rows (out = 0, lse per lse_empty), sink = +inf
// (out = 0), and every non-finite gold element.
struct SparseMlaBudget {
  SparseMlaGold gold;
  std::vector<double> out;         // [T][H][D_v]
  std::vector<double> lse;         // [T][H], in the convention's base
  std::vector<double> max_logits;  // [T][H]
};
SparseMlaBudget sparse_mla_decode_budget(const SparseMlaDecodeParams& p, const KernelPrecision& k,
                                         const AttentionClaims& claims = {});
SparseMlaBudget sparse_mla_prefill_budget(const SparseMlaPrefillParams& p, const KernelPrecision& k,
                                          const AttentionClaims& claims = {});

// A kernel's outputs, as the kernel wrote them (bf16 codes, fp32). An empty lse or max_logits is
// not judged (the kernel did not produce it); `out` is always judged.
struct SparseMlaKernelOutputs {
  std::span<const std::uint16_t> out;   // bf16 [T][H][D_v]
  std::span<const float> lse;           // fp32 [T][H]
  std::span<const float> max_logits;    // fp32 [T][H]
};

// The verdict on every given output: CaseResult with op, shape, outputs ("out", "lse",
// "max_logits") and the histogram of all ratios filled in; variant, layout, profile and seed are
// the caller's. Throws InvalidArgument for bad params or outputs of the wrong size.
CaseResult judge_sparse_mla_decode(const SparseMlaDecodeParams& p, const SparseMlaKernelOutputs& got,
                                   const JudgeOptions& options);
CaseResult judge_sparse_mla_prefill(const SparseMlaPrefillParams& p, const SparseMlaKernelOutputs& got,
                                    const JudgeOptions& options);

// ---- indexer logits (paged SPEC §6.2, non-paged SPEC §6.3) -----------------------------------
// Gold logits in fp64 straight from the formula (mqa_logit_formula.hpp with T = double; −inf at
// every position that is not visible) and the budget of every position (0 where masked).
struct LogitsBudget {
  std::int64_t rows = 0;
  std::int64_t width = 0;  // max_ctx (paged) or S_kv
  std::vector<VisibleRange> ranges;  // [rows]
  std::vector<double> gold;          // [rows][width]
  std::vector<double> budget;        // [rows][width]
};
// `p.logits` is not read (it may be empty).
LogitsBudget paged_mqa_logits_budget(const PagedMqaLogitsParams& p, const KernelPrecision& k);
LogitsBudget mqa_logits_budget(const MqaLogitsParams& p, const KernelPrecision& k);

// `logits` [rows][row_stride] as the kernel wrote them; positions [0, width) of each row are
// judged, less those the write contract leaves undefined.
CaseResult judge_paged_mqa_logits(const PagedMqaLogitsParams& p, std::span<const float> logits,
                                  std::int64_t row_stride, const JudgeOptions& options);
CaseResult judge_mqa_logits(const MqaLogitsParams& p, std::span<const float> logits, std::int64_t row_stride,
                            const JudgeOptions& options);

// ---- top-k (SPEC §6.4) -----------------------------------------------------------------------
// Exact: the acceptance predicate check_topk. Output "indices" fails at the first rejected row
// and slot, naming the rule.
CaseResult judge_topk(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                      std::span<const VisibleRange> ranges, std::int64_t k, std::span<const std::int32_t> indices,
                      const JudgeOptions& options);

// ---- shared by the per-op judges -------------------------------------------------------------
// compare() of one output with its unwritten elements found on the raw bits (`unwritten`, 1 =
// still holds the sentinel; empty = none), every compared element's ratio added to `hist`.
CaseResult::Output judge_output(std::string name, std::span<const double> got, std::span<const double> want,
                                std::span<const double> budget, const TensorShape& shape,
                                std::span<const std::uint8_t> unwritten, std::span<const std::uint8_t> skip,
                                RatioHistogram& hist);

}  // namespace dsa
