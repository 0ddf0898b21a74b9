// A kernel under test (issue 6.1): one interface through which the fuzzer drives anything that
// claims to implement an operation — the CPU fast variants, a GPU kernel (through a host-side
// callable; no GPU header here), a deliberately broken mutant, or a kernel judged from case files.
// The kernel states what it promises (SPEC §9 profile, reader model, write contract, determinism,
// arithmetic precision) and the generators produce only inputs inside that promise.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "dsa/budget.hpp"
#include "dsa/judge.hpp"
#include "dsa/mqa_logits.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/quantize.hpp"
#include "dsa/sparse_mla.hpp"
#include "dsa/topk.hpp"
#include "dsa/write_contract.hpp"

namespace dsa::fuzz {

// SPEC §9 "decode invalid index": which out-of-range index values the kernel tolerates.
enum class InvalidIndices : std::uint8_t {
  any_out_of_range,  // this project: INT_MIN … −1 and ≥ capacity are all simply invalid
  only_minus_one,    // FlashMLA decode precondition: −1 is the only invalid value it may see
};
const char* to_string(InvalidIndices v);

// A profile (SPEC §9): the conventions a kernel follows and the preconditions it needs. The
// generators draw every case inside it; an empty list means "the generator's default set".
struct Profile {
  std::string name = "project";

  // ---- sparse MLA (decode and prefill) ----
  std::vector<MlaConventions> conventions = {MlaConventions::flashmla(), MlaConventions::xkernels(),
                                             MlaConventions::flashmla_prefill_2025()};
  InvalidIndices invalid_indices = InvalidIndices::any_out_of_range;
  std::int32_t topk_multiple = 1;  // FlashMLA decode: 64
  std::vector<std::int32_t> heads;  // allowed H (FlashMLA: {64, 128}); empty = small default set
  std::vector<MlaLayout> mla_layouts = {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16};
  std::vector<IndexMode> index_modes = {IndexMode::physical, IndexMode::logical};
  bool extra_cache = true;             // decode: an extra cache with its own table and lengths
  bool topk_length = true;             // lengths given (else never)
  bool lengths_out_of_range = true;    // topk_length outside [0, topk] (clamped per SPEC §3)
  bool sinks = true;                   // finite attention sinks
  bool infinite_sinks = true;          // ±inf sinks
  bool custom_sm_scale = true;         // sm_scale other than D_qk^−1/2
  std::vector<ScalePolicy> v32_scale_policies = {ScalePolicy::pow2_ceil, ScalePolicy::fp32};
  std::vector<Fp8Format> fp8_formats = {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz};
  std::int64_t max_batch = 3;
  std::int64_t max_s_q = 3;

  // ---- indexer (paged_mqa_logits, mqa_logits) ----
  std::vector<IndexKLayout> index_k_layouts = {IndexKLayout::standard, IndexKLayout::preshuffle};
  std::vector<std::int32_t> index_page_tokens;  // empty = default set (filtered by layout rules)
  std::vector<std::int64_t> index_head_dims;    // empty = {16, 32, 64, 128}
  std::vector<ContextLens> context_lens_kinds = {ContextLens::per_sequence, ContextLens::per_row};
};

// Named profiles of public systems (SPEC §9): "project", "flashmla_decode", "xkernels",
// "deepgemm_paged", "aiter_paged". Throws InvalidArgument("profile", ...) for an unknown name.
Profile profile(const std::string& name);
std::vector<std::string> profile_names();

// Where and how one call runs. A GPU kernel reads `device` (the campaign picks it from CTest's
// resource allocation); a kernel with a split parameter reads `num_splits` (the case chose it).
struct KernelUnderTest;
struct RunContext {
  int device = -1;     // −1: no GPU
  int num_splits = 1;  // ≥ 1, for kernels with takes_num_splits
};

// The GPU device every call of this process targets (−1: none). The campaign sets it from CTest's
// resource allocation (CTEST_RESOURCE_GROUP_0_GPUS) or --device.
void set_device(int device);
int current_device();
// The context of one call of `k`: the current device, and `num_splits` if the kernel takes one.
RunContext run_context(const KernelUnderTest& k, int num_splits);

using DecodeFn = std::function<void(const SparseMlaDecodeParams&, const SparseMlaOutputs&, const RunContext&)>;
using PrefillFn = std::function<void(const SparseMlaPrefillParams&, const SparseMlaOutputs&, const RunContext&)>;
// Writes p.logits (a kernel under a write contract other than `all` may leave positions alone).
using PagedLogitsFn = std::function<void(const PagedMqaLogitsParams&, const RunContext&)>;
using LogitsFn = std::function<void(const MqaLogitsParams&, const RunContext&)>;
// topk_indices' signature: logits [rows][row_stride], ranges [rows], out [rows][k].
using TopkFn = std::function<void(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                                  std::span<const VisibleRange> ranges, std::int64_t k, std::span<std::int32_t> out,
                                  const RunContext&)>;

struct KernelUnderTest {
  std::string name;  // "fast.fused", "mutant.lse_base2", "case-file"
  Op op = Op::sparse_mla_decode;
  Profile profile;

  // Reader model (SPEC §2.5). A kernel that takes the model as a parameter lists every model it
  // honours; a kernel with a built-in reader lists exactly that one. Indexer: where s_K enters.
  std::vector<ReaderModel> mla_readers = {ReaderModel::staged_bf16()};
  std::vector<KScaleAt> k_scale_at = {KScaleAt::after_head_sum};
  // Indexer: which logits positions the kernel defines (SPEC §6.2, §9).
  WriteContract write_contract = WriteContract::all;
  // Rerunning the same call gives the same bits (SPEC §11 E).
  bool deterministic = true;
  // Indexer: the arithmetic order does not depend on the K layout, the page size or the physical
  // block numbers, so standard ≡ preshuffle and relabelled pools give the same bits (SPEC §11 E).
  bool layout_independent = true;
  // Sparse MLA: the result does not depend on physical block numbers (SPEC §11 E: relabel).
  bool relabel_exact = true;
  // Top-k: selected positions come in the reference order (logit desc, position asc).
  bool topk_stable_order = false;

  // What its arithmetic promises (budgets, oracle/BUDGETS.md) and its attention algorithm.
  KernelPrecision precision;
  AttentionClaims claims;      // num_splits is overridden by RunContext when takes_num_splits
  bool takes_num_splits = false;

  // Sparse MLA: a second entry point that must give identical bits whenever the reader model's
  // operands are bf16 (the staged twin of a fused kernel, SPEC §4). Empty: no such claim.
  DecodeFn staged_twin_decode;
  PrefillFn staged_twin_prefill;

  // Catalog bookkeeping: a mutant reproduces one bug class on purpose.
  bool mutant = false;
  std::string bug;  // for a mutant: the bug it reproduces, in words

  // Exactly the callable of `op` is set.
  DecodeFn decode;
  PrefillFn prefill;
  PagedLogitsFn paged_logits;
  LogitsFn logits;
  TopkFn topk;

  // The judge's options for one call of this kernel (precision, claims with the split count
  // actually used, sentinels, write contract, order claim).
  JudgeOptions judge_options(const RunContext& ctx) const;
};

// The project's own correct kernels (CPU fast variants and the plain-loop GPU-style model kernel),
// every op, plus those of every registered provider; `mutant_catalog()` (mutants.hpp) holds the
// broken ones.
std::vector<KernelUnderTest> correct_kernels();

// A GPU build (or a test) adds its kernels here, e.g. from a static initializer of a file linked
// into the executable: the campaign, the self-test and the corpus replay then fuzz them too. The
// provider runs on every correct_kernels() call; the callables read RunContext::device.
using KernelProvider = std::vector<KernelUnderTest> (*)();
void register_kernel_provider(KernelProvider provider);
// One by name; throws InvalidArgument("kernel", ...) when unknown. Searches mutants too.
KernelUnderTest kernel_by_name(const std::string& name);

}  // namespace dsa::fuzz
