// sparse_mla_decode cases (SPEC §4): random generation, the case-file schema and conversions, and
// the check of a case file's kernel outputs.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "case_common.hpp"
#include "dsa/error.hpp"
#include "dsa/op_cases.hpp"

namespace dsa {

using detail::json;

SparseMlaDecodeCase random_sparse_mla_decode_case(const RandomCaseSpec& s) {
  using namespace detail;
  Rng rng(s.seed * 0x9E3779B97F4A7C15ull + 0x5A17);
  SparseMlaDecodeCase c;
  // Size classes: tiny rows, ordinary ones, long rows (γ_n grows with n) and the many-head
  // single-row decode of the DeepSeek models.
  const auto size_class = rng() % 8;
  std::int64_t B = uniform_int(rng, 1, 3), S_q = uniform_int(rng, 1, 2), topk = uniform_int(rng, 8, 256);
  std::int64_t H = pick<std::int64_t>(rng, {1, 2, 3, 4, 8, 16});
  if (size_class == 0) topk = uniform_int(rng, 0, 8);
  if (size_class == 6) B = uniform_int(rng, 1, 2), S_q = 1, H = pick<std::int64_t>(rng, {1, 2, 4}), topk = uniform_int(rng, 256, 1024);
  if (size_class == 7) B = 1, S_q = 1, H = pick<std::int64_t>(rng, {64, 128}), topk = uniform_int(rng, 8, 128);
  c.B = s.B.value_or(B);
  c.S_q = s.S_q.value_or(S_q);
  c.H = static_cast<std::int32_t>(s.H.value_or(H));
  c.topk = static_cast<std::int32_t>(s.topk.value_or(topk));
  c.mode = s.index_mode ? index_mode_from(*s.index_mode, "index_mode") : pick<IndexMode>(rng, {IndexMode::physical, IndexMode::logical});
  const std::string layout = random_mla_layout(rng, s.layout, 0);
  const Fp8Format fp8 = random_fp8_format(rng, s.fp8);
  const ScalePolicy policy = s.scale_policy ? scale_policy_from(*s.scale_policy, "scale_policy")
                                            : pick<ScalePolicy>(rng, {ScalePolicy::pow2_ceil, ScalePolicy::fp32});
  auto cache_of = [&](const std::string& l, std::int32_t topk, std::optional<std::int64_t> page_knob,
                      std::optional<std::int64_t> nb_knob) {
    const auto page = static_cast<std::int32_t>(page_knob.value_or(pick<std::int64_t>(rng, {1, 2, 3, 16, 64})));
    const std::int64_t tokens = uniform_int(rng, 4, 2 * static_cast<std::int64_t>(topk) + 8);
    const std::int64_t nb = nb_knob.value_or(std::max<std::int64_t>(1, (tokens + page - 1) / page));
    MlaCacheBuffer cache(random_mla_geometry(rng, l, fp8, page, nb));
    fill_mla_cache(cache, rng, policy);
    return cache;
  };
  c.cache = cache_of(layout, c.topk, s.page_tokens, s.num_blocks);
  c.max_blocks = c.mode == IndexMode::logical ? uniform_int(rng, 1, c.cache.geo.num_blocks + 2) : 0;
  random_selection(rng, c.B, c.S_q, c.topk, c.cache.geo.num_blocks, c.cache.geo.page_tokens, c.mode, c.max_blocks,
                   s.lengths.value_or(rng() % 2 == 0), c.block_table, c.indices, c.topk_length);
  if (s.extra.value_or(rng() % 2 == 0)) {
    const std::string extra_layout = random_mla_layout(rng, std::nullopt, c.cache.geo.dim_qk());
    c.extra_topk = static_cast<std::int32_t>(uniform_int(rng, 1, 64));
    c.extra_cache.emplace(cache_of(extra_layout, c.extra_topk, std::nullopt, std::nullopt));
    c.extra_max_blocks = c.mode == IndexMode::logical ? uniform_int(rng, 1, c.extra_cache->geo.num_blocks + 2) : 0;
    random_selection(rng, c.B, c.S_q, c.extra_topk, c.extra_cache->geo.num_blocks, c.extra_cache->geo.page_tokens,
                     c.mode, c.extra_max_blocks, rng() % 2 == 0, c.extra_block_table, c.extra_indices,
                     c.extra_topk_length);
  }
  c.q = random_query(rng, c.T() * c.H * c.cache.geo.dim_qk());
  c.sink = random_sink(rng, c.H, s.sink);
  c.sm_scale = random_sm_scale(rng);
  c.reader = random_reader(rng, s.reader);
  c.conventions = random_conventions(rng, s.conventions);
  if (s.poison) {
    TokenSet used;
    referenced_tokens(c.cache.geo, c.mode, c.block_table, c.max_blocks, c.indices, c.topk, c.topk_length, c.T(), c.S_q,
                      used);
    poison_unreferenced(c.cache, used);
    if (c.extra_cache) {
      TokenSet used_extra;
      referenced_tokens(c.extra_cache->geo, c.mode, c.extra_block_table, c.extra_max_blocks, c.extra_indices,
                        c.extra_topk, c.extra_topk_length, c.T(), c.S_q, used_extra);
      poison_unreferenced(*c.extra_cache, used_extra);
    }
  }
  return c;
}

namespace detail {

Schema sparse_mla_decode_schema() {
  Schema s;
  s.op = "sparse_mla_decode";
  s.tensors = {
      {"q", DType::BF16, {"B", "S_q", "H", "D_qk"}},
      {"kv_cache", {DType::U8, DType::BF16}, {"kv_cache_bytes"}},
      {"kv_cache_scales", DType::U8, {"kv_cache_scale_bytes"}, false},
      {"indices", DType::I32, {"B", "S_q", "topk"}},
      {"topk_length", DType::I32, {"B"}, false},
      {"block_table", DType::I32, {"B", "max_blocks"}, false},
      {"extra_kv_cache", {DType::U8, DType::BF16}, {"extra_kv_cache_bytes"}, false},
      {"extra_kv_cache_scales", DType::U8, {"extra_kv_cache_scale_bytes"}, false},
      {"extra_indices", DType::I32, {"B", "S_q", "extra_topk"}, false},
      {"extra_topk_length", DType::I32, {"B"}, false},
      {"extra_block_table", DType::I32, {"B", "extra_max_blocks"}, false},
      {"attn_sink", DType::F32, {"H"}, false},
      {"out", DType::BF16, {"B", "S_q", "H", "D_v"}, false},
      {"lse", DType::F32, {"B", "S_q", "H"}, false},
      {"max_logits", DType::F32, {"B", "S_q", "H"}, false},
  };
  return s;
}

}  // namespace detail

CaseFile to_case_file(const SparseMlaDecodeCase& c, const nlohmann::json& judging) {
  using namespace detail;
  CaseFile f;
  const int D = c.cache.geo.dim_qk();
  json p = {{"op", "sparse_mla_decode"},
            {"index_mode", to_string(c.mode)},
            {"kv_cache", mla_geometry_to_json(c.cache.geo)},
            {"sm_scale", c.sm_scale},
            {"reader", reader_to_json(c.reader)},
            {"conventions", conventions_to_json(c.conventions)}};
  add_tensor(f, "q", {c.B, c.S_q, c.H, D}, c.q, DType::BF16);
  add_mla_cache(f, c.cache, "kv_cache", "kv_cache_scales");
  add_tensor(f, "indices", {c.B, c.S_q, c.topk}, c.indices);
  if (!c.topk_length.empty()) add_tensor(f, "topk_length", {c.B}, c.topk_length);
  if (c.mode == IndexMode::logical) add_tensor(f, "block_table", {c.B, c.max_blocks}, c.block_table);
  if (c.extra_cache && c.extra_topk > 0) {
    p["extra_kv_cache"] = mla_geometry_to_json(c.extra_cache->geo);
    add_mla_cache(f, *c.extra_cache, "extra_kv_cache", "extra_kv_cache_scales");
    add_tensor(f, "extra_indices", {c.B, c.S_q, c.extra_topk}, c.extra_indices);
    if (!c.extra_topk_length.empty()) add_tensor(f, "extra_topk_length", {c.B}, c.extra_topk_length);
    if (c.mode == IndexMode::logical) add_tensor(f, "extra_block_table", {c.B, c.extra_max_blocks}, c.extra_block_table);
  }
  if (!c.sink.empty()) add_tensor(f, "attn_sink", {c.H}, c.sink);
  p.update(judging);
  f.set_params(p);
  return f;
}

SparseMlaDecodeCase sparse_mla_decode_case_from_file(const CaseFile& f) {
  using namespace detail;
  const json p = op_params(f, Op::sparse_mla_decode);
  reject_unknown_tensors(f, sparse_mla_decode_schema());
  SparseMlaDecodeCase c;
  if (!p.contains("kv_cache")) fail(f, "kv_cache", "its geometry parameter 'kv_cache' is missing");
  c.cache = mla_cache_from(f, p.at("kv_cache"), "kv_cache", "kv_cache_scales");
  Bindings bound = {{"D_qk", c.cache.geo.dim_qk()}, {"D_v", c.cache.geo.dim_v()}};
  const Bindings b = check_schema(f, without_caches(sparse_mla_decode_schema()), bound);
  c.B = b.at("B");
  c.S_q = b.at("S_q");
  c.H = static_cast<std::int32_t>(b.at("H"));
  c.topk = static_cast<std::int32_t>(b.at("topk"));
  try {
    c.mode = index_mode_from(get_string(f, p, "index_mode").value_or("physical"), "index_mode");
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
  if (c.mode == IndexMode::logical) {
    if (!f.find("block_table")) fail(f, "block_table", "is missing: index_mode is logical");
    c.block_table = f.get<std::int32_t>("block_table");
    c.max_blocks = b.at("max_blocks");
  } else if (f.find("block_table")) {
    fail(f, "block_table", "is given but index_mode is physical");
  }
  if (f.find("extra_kv_cache") || f.find("extra_indices")) {
    if (!p.contains("extra_kv_cache")) fail(f, "extra_kv_cache", "its geometry parameter 'extra_kv_cache' is missing");
    if (!f.find("extra_indices")) fail(f, "extra_indices", "is missing: an extra cache needs its indices");
    c.extra_cache.emplace(mla_cache_from(f, p.at("extra_kv_cache"), "extra_kv_cache", "extra_kv_cache_scales"));
    c.extra_topk = static_cast<std::int32_t>(b.at("extra_topk"));
    c.extra_indices = f.get<std::int32_t>("extra_indices");
    if (f.find("extra_topk_length")) c.extra_topk_length = f.get<std::int32_t>("extra_topk_length");
    if (c.mode == IndexMode::logical) {
      if (!f.find("extra_block_table")) fail(f, "extra_block_table", "is missing: index_mode is logical");
      c.extra_block_table = f.get<std::int32_t>("extra_block_table");
      c.extra_max_blocks = b.at("extra_max_blocks");
    }
  }
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

CaseResult check_sparse_mla_decode(const CaseFile& in, const CaseFile& outs, const json& params) {
  const SparseMlaDecodeCase c = sparse_mla_decode_case_from_file(in);
  const Bindings bound = {{"B", c.B}, {"S_q", c.S_q}, {"H", c.H}, {"D_v", c.cache.geo.dim_v()}};
  const AttentionOutputs o = read_attention_outputs(outs, sparse_mla_decode_schema(), bound);
  return judge_sparse_mla_decode(c.params(), o.view(), judge_options_from_json(params, Op::sparse_mla_decode));
}

CaseFile make_sparse_mla_decode(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors) {
  const SparseMlaDecodeCase c = random_sparse_mla_decode_case(spec);
  json judging = default_judging_json(Op::sparse_mla_decode);
  judging["seed"] = spec.seed;
  CaseFile f = to_case_file(c, judging);
  const SparseMlaDecodeParams p = c.params();
  const std::vector<std::int64_t> rows = {c.B, c.S_q, c.H};
  if (outputs != "none" || gold_tensors) {
    const SparseMlaGold g = sparse_mla_decode_gold(p);
    add_attention_outputs(f, g, rows, false, outputs, [&](const SparseMlaOutputs& o) { sparse_mla_decode_fast(p, o); });
    if (gold_tensors) add_attention_gold_tensors(f, g, rows, false);
  }
  return f;
}

}  // namespace detail

}  // namespace dsa
