// sparse_mla_prefill cases (SPEC §5): random generation, the case-file schema and conversions, and
// the check of a case file's kernel outputs.
#include <fmt/format.h>

#include "case_common.hpp"
#include "dsa/error.hpp"
#include "dsa/op_cases.hpp"

namespace dsa {

using detail::json;

SparseMlaPrefillCase random_sparse_mla_prefill_case(const RandomCaseSpec& s) {
  using namespace detail;
  Rng rng(s.seed * 0x9E3779B97F4A7C15ull + 0x9F11);
  SparseMlaPrefillCase c;
  const auto size_class = rng() % 8;
  std::int64_t S_q = uniform_int(rng, 1, 4), topk = uniform_int(rng, 8, 256);
  std::int64_t H = pick<std::int64_t>(rng, {1, 2, 4, 8, 16});
  if (size_class == 0) topk = uniform_int(rng, 0, 8);
  if (size_class == 6) S_q = uniform_int(rng, 1, 2), H = pick<std::int64_t>(rng, {1, 2, 4}), topk = uniform_int(rng, 256, 1024);
  if (size_class == 7) S_q = 1, H = pick<std::int64_t>(rng, {64, 128}), topk = uniform_int(rng, 8, 128);
  c.S_q = s.S_q.value_or(S_q);
  c.H = static_cast<std::int32_t>(s.H.value_or(H));
  c.topk = static_cast<std::int32_t>(s.topk.value_or(topk));
  // Dense bf16 kv ([S_kv][D_qk], one page) half of the time, else a paged fp8 layout.
  const std::string layout = s.layout ? *s.layout
                                      : pick<std::string>(rng, {"BF16", "BF16", "BF16-512", "V32", "MODEL1", "MODEL1_SPLIT"});
  const Fp8Format fp8 = random_fp8_format(rng, s.fp8);
  const ScalePolicy policy = s.scale_policy ? scale_policy_from(*s.scale_policy, "scale_policy")
                                            : pick<ScalePolicy>(rng, {ScalePolicy::pow2_ceil, ScalePolicy::fp32});
  const std::int64_t tokens = s.S_kv.value_or(uniform_int(rng, 1, 2 * static_cast<std::int64_t>(c.topk) + 8));
  const bool dense = layout == "BF16" || layout == "BF16-512";
  const auto page = static_cast<std::int32_t>(dense ? tokens : s.page_tokens.value_or(pick<std::int64_t>(rng, {1, 16, 64})));
  const std::int64_t nb = s.num_blocks.value_or(dense ? 1 : std::max<std::int64_t>(1, (tokens + page - 1) / page));
  MlaCacheGeometry g = random_mla_geometry(rng, layout, fp8, page, nb);
  if (dense) g.block_stride_bytes = g.page_bytes();
  c.kv = MlaCacheBuffer(g);
  fill_mla_cache(c.kv, rng, policy);
  std::vector<std::int32_t> no_table;
  random_selection(rng, c.S_q, 1, c.topk, g.num_blocks, g.page_tokens, IndexMode::physical, 0, false, no_table,
                   c.indices, c.topk_length);
  if (s.lengths.value_or(rng() % 2 == 0)) {
    c.topk_length.resize(static_cast<std::size_t>(c.S_q));
    for (auto& l : c.topk_length) l = static_cast<std::int32_t>(uniform_int(rng, -1, c.topk + 1));
  }
  c.q = random_query(rng, c.S_q * c.H * g.dim_qk());
  c.sink = random_sink(rng, c.H, s.sink);
  c.sm_scale = random_sm_scale(rng);
  c.reader = random_reader(rng, s.reader);
  c.conventions = random_conventions(rng, s.conventions);
  if (s.poison) {
    TokenSet used;
    referenced_tokens(g, IndexMode::physical, no_table, 0, c.indices, c.topk, c.topk_length, c.S_q, 1, used);
    poison_unreferenced(c.kv, used);
  }
  return c;
}

namespace detail {

Schema sparse_mla_prefill_schema() {
  Schema s;
  s.op = "sparse_mla_prefill";
  s.tensors = {
      {"q", DType::BF16, {"S_q", "H", "D_qk"}},
      {"kv", {DType::U8, DType::BF16}, {"kv_bytes"}},
      {"kv_scales", DType::U8, {"kv_scale_bytes"}, false},
      {"indices", DType::I32, {"S_q", "topk"}},
      {"topk_length", DType::I32, {"S_q"}, false},
      {"attn_sink", DType::F32, {"H"}, false},
      {"out", DType::BF16, {"S_q", "H", "D_v"}, false},
      {"lse", DType::F32, {"S_q", "H"}, false},
      {"max_logits", DType::F32, {"S_q", "H"}, false},
  };
  return s;
}

}  // namespace detail

CaseFile to_case_file(const SparseMlaPrefillCase& c, const nlohmann::json& judging) {
  using namespace detail;
  CaseFile f;
  json p = {{"op", "sparse_mla_prefill"},
            {"kv", mla_geometry_to_json(c.kv.geo)},
            {"sm_scale", c.sm_scale},
            {"reader", reader_to_json(c.reader)},
            {"conventions", conventions_to_json(c.conventions)}};
  add_tensor(f, "q", {c.S_q, c.H, c.kv.geo.dim_qk()}, c.q, DType::BF16);
  add_mla_cache(f, c.kv, "kv", "kv_scales");
  add_tensor(f, "indices", {c.S_q, c.topk}, c.indices);
  if (!c.topk_length.empty()) add_tensor(f, "topk_length", {c.S_q}, c.topk_length);
  if (!c.sink.empty()) add_tensor(f, "attn_sink", {c.H}, c.sink);
  p.update(judging);
  f.set_params(p);
  return f;
}

SparseMlaPrefillCase sparse_mla_prefill_case_from_file(const CaseFile& f) {
  using namespace detail;
  const json p = op_params(f, Op::sparse_mla_prefill);
  reject_unknown_tensors(f, sparse_mla_prefill_schema());
  SparseMlaPrefillCase c;
  json geo = p.contains("kv") ? p.at("kv") : json::object();
  // A dense bf16 [S_kv][D_qk] kv needs no geometry: it is one page of S_kv rows.
  const Tensor* kv = f.find("kv");
  if (kv && kv->dtype == DType::BF16 && kv->shape.size() == 2 && !geo.contains("layout")) {
    geo = {{"layout", "BF16"}, {"bf16_dim_qk", kv->shape[1]}, {"page_tokens", kv->shape[0]}, {"num_blocks", 1}};
    if (kv->shape[0] == 0) geo["page_tokens"] = 1, geo["num_blocks"] = 0;
  }
  if (!geo.contains("layout")) fail(f, "kv", "its geometry parameter 'kv' is missing (needed unless kv is BF16 [S_kv][D_qk])");
  c.kv = mla_cache_from(f, geo, "kv", "kv_scales");
  const Bindings b = check_schema(f, without_caches(sparse_mla_prefill_schema()),
                                  {{"D_qk", c.kv.geo.dim_qk()}, {"D_v", c.kv.geo.dim_v()}});
  c.S_q = b.at("S_q");
  c.H = static_cast<std::int32_t>(b.at("H"));
  c.topk = static_cast<std::int32_t>(b.at("topk"));
  try {
    if (p.contains("reader")) c.reader = reader_from(p.at("reader"), "reader");
    if (p.contains("conventions")) c.conventions = conventions_from(p.at("conventions"), "conventions");
    else if (p.contains("profile")) c.conventions = conventions_from(p.at("profile"), "profile");
  } catch (const CaseFileError&) {
    throw;
  } catch (const InvalidArgument& e) {
    fail(f, "", e.what());
  }
  c.q = f.get<std::uint16_t>("q", DType::BF16);
  c.indices = f.get<std::int32_t>("indices");
  if (f.find("topk_length")) c.topk_length = f.get<std::int32_t>("topk_length");
  if (f.find("attn_sink")) c.sink = f.get<float>("attn_sink");
  c.sm_scale = static_cast<float>(get_double(f, p, "sm_scale").value_or(0.0));
  try {
    validate(c.params());
  } catch (const InvalidArgument& e) {
    fail(f, "", e.what());
  }
  return c;
}

namespace detail {

CaseResult check_sparse_mla_prefill(const CaseFile& in, const CaseFile& outs, const json& params) {
  const SparseMlaPrefillCase c = sparse_mla_prefill_case_from_file(in);
  const Bindings bound = {{"S_q", c.S_q}, {"H", c.H}, {"D_v", c.kv.geo.dim_v()}};
  const AttentionOutputs o = read_attention_outputs(outs, sparse_mla_prefill_schema(), bound);
  return judge_sparse_mla_prefill(c.params(), o.view(), judge_options_from_json(params, Op::sparse_mla_prefill));
}

CaseFile make_sparse_mla_prefill(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors) {
  const SparseMlaPrefillCase c = random_sparse_mla_prefill_case(spec);
  json judging = default_judging_json(Op::sparse_mla_prefill);
  judging["seed"] = spec.seed;
  CaseFile f = to_case_file(c, judging);
  const SparseMlaPrefillParams p = c.params();
  const std::vector<std::int64_t> rows = {c.S_q, c.H};
  if (outputs != "none" || gold_tensors) {
    const SparseMlaGold g = sparse_mla_prefill_gold(p);
    add_attention_outputs(f, g, rows, true, outputs, [&](const SparseMlaOutputs& o) { sparse_mla_prefill_fast(p, o); });
    if (gold_tensors) add_attention_gold_tensors(f, g, rows, true);
  }
  return f;
}

}  // namespace detail

}  // namespace dsa
