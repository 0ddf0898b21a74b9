// The catalog of correct kernels under test (the CPU fast variants and the GPU-style model kernel)
// and the SPEC §9 profiles of public systems.
#include <fmt/format.h>

#include <omp.h>

#include "dsa/error.hpp"
#include "dsa/kernel_under_test.hpp"
#include "dsa/mutants.hpp"
#include "model_kernel.hpp"

namespace dsa::fuzz {

namespace {

int g_device = -1;

std::vector<KernelProvider>& providers() {
  static std::vector<KernelProvider> p;
  return p;
}

const std::vector<ReaderModel> kAllReaders = {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(),
                                              ReaderModel::flashmla_sm100(), ReaderModel::exact_fp32()};
// The staged workspace is bf16: the staged path *is* the reader model with bf16 operands.
const std::vector<ReaderModel> kBf16OperandReaders = {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(),
                                                      ReaderModel::flashmla_sm100()};
const std::vector<KScaleAt> kAllKScales = {KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16};

KernelUnderTest attention_base(std::string name, Op op) {
  KernelUnderTest k;
  k.name = std::move(name);
  k.op = op;
  // The CPU's own arithmetic: fp32 with round-to-nearest accumulation, P kept in fp32.
  k.precision = kernel_precision("fp32p-rn", op);
  k.claims.tile_slots = kMlaTileSlots;
  k.takes_num_splits = true;
  k.mla_readers = kAllReaders;
  return k;
}

SparseMlaFastOptions fast_options(MlaFastAlgo algo, const RunContext& ctx) { return {algo, ctx.num_splits}; }

}  // namespace

void set_device(int device) { g_device = device; }

void register_kernel_provider(KernelProvider provider) {
  if (provider) providers().push_back(provider);
}
int current_device() { return g_device; }

RunContext run_context(const KernelUnderTest& k, int num_splits) {
  RunContext c;
  c.device = g_device;
  c.num_splits = k.takes_num_splits ? std::max(num_splits, 1) : 1;
  return c;
}

JudgeOptions KernelUnderTest::judge_options(const RunContext& ctx) const {
  JudgeOptions o;
  o.precision = precision;
  o.claims = claims;
  if (takes_num_splits) o.claims.num_splits = ctx.num_splits;
  o.sentinel_bf16 = kSentinelBf16;
  o.sentinel_f32 = kSentinelF32;
  o.write_contract = write_contract;
  o.topk_stable_order = topk_stable_order;
  return o;
}

Profile profile(const std::string& name) {
  Profile p;
  p.name = name;
  if (name == "project") return p;
  if (name == "flashmla_decode") {
    // FlashMLA sparse decode: its conventions, −1 as the only invalid index, topk a multiple of
    // 64, H ∈ {64, 128}, physical indices over V32 / MODEL1 caches, e4m3fn.
    p.conventions = {MlaConventions::flashmla()};
    p.invalid_indices = InvalidIndices::only_minus_one;
    p.topk_multiple = 64;
    p.heads = {64, 128};
    p.mla_layouts = {MlaLayout::V32, MlaLayout::MODEL1};
    p.index_modes = {IndexMode::physical};
    p.lengths_out_of_range = false;
    p.custom_sm_scale = true;
    p.fp8_formats = {Fp8Format::e4m3fn};
    p.max_batch = 2;
    p.max_s_q = 2;
    return p;
  }
  if (name == "xkernels") {
    // xkernels staged fp8 decode: −inf for empty rows, sink folded into lse, logical indices
    // through block tables, MODEL1_SPLIT or V32 caches.
    p.conventions = {MlaConventions::xkernels()};
    p.mla_layouts = {MlaLayout::MODEL1_SPLIT, MlaLayout::V32};
    p.index_modes = {IndexMode::logical};
    p.lengths_out_of_range = false;
    return p;
  }
  if (name == "deepgemm_paged") {
    p.index_k_layouts = {IndexKLayout::standard};
    p.index_head_dims = {32, 64, 128};
    p.fp8_formats = {Fp8Format::e4m3fn};
    return p;
  }
  if (name == "aiter_paged") {
    p.index_k_layouts = {IndexKLayout::preshuffle};
    p.index_page_tokens = {64};
    p.index_head_dims = {64, 128};
    return p;
  }
  throw InvalidArgument("profile", fmt::format("unknown profile '{}' (known: {})", name,
                                               fmt::join(profile_names(), ", ")));
}

std::vector<std::string> profile_names() {
  return {"project", "flashmla_decode", "xkernels", "deepgemm_paged", "aiter_paged"};
}

std::vector<KernelUnderTest> correct_kernels() {
  std::vector<KernelUnderTest> ks;
  // ---- sparse MLA decode ----
  {
    auto fused = attention_base("fast.fused", Op::sparse_mla_decode);
    fused.decode = [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
      sparse_mla_decode_fast(p, o, fast_options(MlaFastAlgo::fused, ctx));
    };
    fused.staged_twin_decode = [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
      sparse_mla_decode_fast(p, o, fast_options(MlaFastAlgo::staged, ctx));
    };
    ks.push_back(fused);

    auto staged = attention_base("fast.staged", Op::sparse_mla_decode);
    staged.mla_readers = kBf16OperandReaders;
    staged.decode = fused.staged_twin_decode;
    ks.push_back(staged);

    // The fast path choosing its own split count: the judge charges the worst case.
    auto autos = attention_base("fast.auto_splits", Op::sparse_mla_decode);
    autos.takes_num_splits = false;
    autos.claims.num_splits = 0;
    autos.decode = [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext&) {
      sparse_mla_decode_fast(p, o, {MlaFastAlgo::fused, 0});
    };
    ks.push_back(autos);

    auto model = attention_base("model.tiled", Op::sparse_mla_decode);
    model.claims.tile_slots = model::kTileSlots;
    model.decode = [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
      model::decode<model::kCorrect>(p, o, ctx.num_splits);
    };
    ks.push_back(model);

    // The fast path inside FlashMLA's promise (H ∈ {64, 128}, topk multiple of 64, −1 only).
    auto flash = fused;
    flash.name = "fast.fused@flashmla_decode";
    flash.profile = profile("flashmla_decode");
    ks.push_back(flash);

    auto xk = fused;
    xk.name = "fast.fused@xkernels";
    xk.profile = profile("xkernels");
    ks.push_back(xk);
  }
  // ---- sparse MLA prefill ----
  {
    auto fused = attention_base("fast.fused", Op::sparse_mla_prefill);
    fused.prefill = [](const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
      sparse_mla_prefill_fast(p, o, fast_options(MlaFastAlgo::fused, ctx));
    };
    fused.staged_twin_prefill = [](const SparseMlaPrefillParams& p, const SparseMlaOutputs& o,
                                   const RunContext& ctx) {
      sparse_mla_prefill_fast(p, o, fast_options(MlaFastAlgo::staged, ctx));
    };
    ks.push_back(fused);

    auto staged = attention_base("fast.staged", Op::sparse_mla_prefill);
    staged.mla_readers = kBf16OperandReaders;
    staged.prefill = fused.staged_twin_prefill;
    ks.push_back(staged);

    auto model = attention_base("model.tiled", Op::sparse_mla_prefill);
    model.claims.tile_slots = model::kTileSlots;
    model.prefill = [](const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
      model::prefill<model::kCorrect>(p, o, ctx.num_splits);
    };
    ks.push_back(model);
  }
  // ---- indexer ----
  {
    KernelUnderTest k;
    k.name = "fast";
    k.op = Op::paged_mqa_logits;
    k.precision = kernel_precision("fp32p-rn", Op::paged_mqa_logits);
    k.k_scale_at = kAllKScales;
    k.paged_logits = [](const PagedMqaLogitsParams& p, const RunContext&) { fast::paged_mqa_logits(p); };
    ks.push_back(k);

    auto deepgemm = k;
    deepgemm.name = "fast@deepgemm_paged";
    deepgemm.profile = profile("deepgemm_paged");
    deepgemm.k_scale_at = {KScaleAt::after_head_sum};
    ks.push_back(deepgemm);

    // A DeepGEMM-style kernel that defines only the visible positions and says so (write
    // contract `visible`): judged on what it promises, so it passes where the same behaviour
    // under the `all` promise is the mutant logits_masked_unwritten.
    auto visible_only = deepgemm;
    visible_only.name = "fast.visible_only@deepgemm_paged";
    visible_only.write_contract = WriteContract::visible;
    visible_only.paged_logits = [](const PagedMqaLogitsParams& p, const RunContext&) {
      validate(p);
      std::vector<float> scratch(p.logits.begin(), p.logits.end());
      PagedMqaLogitsParams p2 = p;
      p2.logits = scratch;
      fast::paged_mqa_logits(p2);
      for (std::int64_t r = 0; r < p.rows(); ++r) {
        const VisibleRange v = visible_range(p, r);
        for (std::int64_t t = v.begin; t < v.end; ++t)
          p.logits[static_cast<std::size_t>(r * p.logits_row_stride + t)] =
              scratch[static_cast<std::size_t>(r * p.logits_row_stride + t)];
      }
    };
    ks.push_back(visible_only);

    auto aiter = k;
    aiter.name = "fast@aiter_paged";
    aiter.profile = profile("aiter_paged");
    aiter.k_scale_at = {KScaleAt::per_head};
    ks.push_back(aiter);

    KernelUnderTest m;
    m.name = "fast";
    m.op = Op::mqa_logits;
    m.precision = kernel_precision("fp32p-rn", Op::mqa_logits);
    m.k_scale_at = kAllKScales;
    m.logits = [](const MqaLogitsParams& p, const RunContext&) { fast::mqa_logits(p); };
    ks.push_back(m);

    KernelUnderTest t;
    t.name = "reference";
    t.op = Op::topk;
    t.topk_stable_order = true;
    t.topk = [](std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                std::span<const VisibleRange> ranges, std::int64_t k, std::span<std::int32_t> out,
                const RunContext&) { topk_indices(logits, rows, row_stride, ranges, k, out); };
    ks.push_back(t);
  }
  // A provider may build on the project's kernels (kernel_by_name); it then sees them alone.
  static thread_local bool in_provider = false;
  if (!in_provider) {
    in_provider = true;
    try {
      for (KernelProvider provider : providers())
        for (auto& k : provider()) ks.push_back(std::move(k));
    } catch (...) {
      in_provider = false;
      throw;
    }
    in_provider = false;
  }
  return ks;
}

KernelUnderTest kernel_by_name(const std::string& name) {
  // "op/name" or "name" (the first match over the ops).
  std::string op_name, kname = name;
  if (const auto slash = name.find('/'); slash != std::string::npos) {
    op_name = name.substr(0, slash);
    kname = name.substr(slash + 1);
  }
  auto matches = [&](const KernelUnderTest& k) {
    return k.name == kname && (op_name.empty() || op_name == to_string(k.op));
  };
  for (auto& k : correct_kernels())
    if (matches(k)) return k;
  for (auto& k : mutant_catalog())
    if (matches(k)) return k;
  throw InvalidArgument("kernel", fmt::format("no kernel named '{}' (give op/name, e.g. sparse_mla_decode/fast.fused)",
                                              name));
}

}  // namespace dsa::fuzz
