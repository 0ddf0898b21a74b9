// Shared pieces of the per-op case files: parameter spellings, typed parameter access, cache
// tensors with their geometry, random fills and poisoning.
#include "case_common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "dsa/error.hpp"
#include "dsa/formats.hpp"
#include "dsa/layouts.hpp"
#include "dsa/mla_slots.hpp"
#include "dsa/quantize.hpp"
#include "dsa/sparse_mla.hpp"

namespace dsa::detail {

namespace {

[[noreturn]] void bad_value(const std::string& where, const std::string& got, const char* known) {
  throw InvalidArgument(where, fmt::format("unknown value '{}' (known: {})", got, known));
}

}  // namespace

MlaLayout mla_layout_from(const std::string& s, const std::string& where) {
  for (MlaLayout l : {MlaLayout::V32, MlaLayout::MODEL1, MlaLayout::MODEL1_SPLIT, MlaLayout::BF16})
    if (s == to_string(l)) return l;
  bad_value(where, s, "V32, MODEL1, MODEL1_SPLIT, BF16");
}

Fp8Format fp8_from(const std::string& s, const std::string& where) {
  if (s == "e4m3fn") return Fp8Format::e4m3fn;
  if (s == "e4m3fnuz") return Fp8Format::e4m3fnuz;
  bad_value(where, s, "e4m3fn, e4m3fnuz");
}

IndexMode index_mode_from(const std::string& s, const std::string& where) {
  if (s == "physical") return IndexMode::physical;
  if (s == "logical") return IndexMode::logical;
  bad_value(where, s, "physical, logical");
}

IndexKLayout index_k_layout_from(const std::string& s, const std::string& where) {
  if (s == "standard") return IndexKLayout::standard;
  if (s == "preshuffle") return IndexKLayout::preshuffle;
  bad_value(where, s, "standard, preshuffle");
}

KScaleAt k_scale_at_from(const std::string& s, const std::string& where) {
  for (KScaleAt a : {KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16})
    if (s == to_string(a)) return a;
  bad_value(where, s, "after_head_sum, per_head, on_k_bf16");
}

ContextLens context_lens_from(const std::string& s, const std::string& where) {
  if (s == "per_sequence") return ContextLens::per_sequence;
  if (s == "per_row") return ContextLens::per_row;
  bad_value(where, s, "per_sequence, per_row");
}

WriteContract write_contract_from(const std::string& s, const std::string& where) {
  for (WriteContract c : {WriteContract::all, WriteContract::visible, WriteContract::ceil_page})
    if (s == to_string(c)) return c;
  bad_value(where, s, "all, visible, ceil_page");
}

ScalePolicy scale_policy_from(const std::string& s, const std::string& where) {
  if (s == "pow2_ceil") return ScalePolicy::pow2_ceil;
  if (s == "fp32") return ScalePolicy::fp32;
  bad_value(where, s, "pow2_ceil, fp32");
}

ReaderModel reader_from(const json& j, const std::string& where) {
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "staged_bf16") return ReaderModel::staged_bf16();
    if (s == "flashmla_sm90") return ReaderModel::flashmla_sm90();
    if (s == "flashmla_sm100") return ReaderModel::flashmla_sm100();
    if (s == "exact_fp32") return ReaderModel::exact_fp32();
    bad_value(where, s, "staged_bf16, flashmla_sm90, flashmla_sm100, exact_fp32, or an object {scale, product, operand}");
  }
  if (!j.is_object()) throw InvalidArgument(where, "must be a preset name or an object {scale, product, operand}");
  ReaderModel r;
  for (const auto& [key, v] : j.items()) {
    if (!v.is_string()) throw InvalidArgument(where + "." + key, "must be a string");
    const auto s = v.get<std::string>();
    if (key == "scale") {
      if (s == "fp32") r.scale = ScaleAs::fp32;
      else if (s == "bf16") r.scale = ScaleAs::bf16;
      else if (s == "e8m0_floor") r.scale = ScaleAs::e8m0_floor;
      else bad_value(where + ".scale", s, "fp32, bf16, e8m0_floor");
    } else if (key == "product") {
      if (s == "fp32") r.product = ProductAs::fp32;
      else if (s == "bf16") r.product = ProductAs::bf16;
      else bad_value(where + ".product", s, "fp32, bf16");
    } else if (key == "operand") {
      if (s == "bf16") r.operand = OperandAs::bf16;
      else if (s == "fp32") r.operand = OperandAs::fp32;
      else bad_value(where + ".operand", s, "bf16, fp32");
    } else {
      throw InvalidArgument(where, fmt::format("unknown field '{}' (known: scale, product, operand)", key));
    }
  }
  return r;
}

json reader_to_json(const ReaderModel& r) {
  return {{"scale", to_string(r.scale)}, {"product", to_string(r.product)}, {"operand", to_string(r.operand)}};
}

MlaConventions conventions_from(const json& j, const std::string& where) {
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "flashmla") return MlaConventions::flashmla();
    if (s == "xkernels") return MlaConventions::xkernels();
    if (s == "flashmla_prefill_2025") return MlaConventions::flashmla_prefill_2025();
    bad_value(where, s, "flashmla, xkernels, flashmla_prefill_2025, or an object {lse_empty, sink_in_lse, lse_base}");
  }
  if (!j.is_object()) throw InvalidArgument(where, "must be a preset name or an object {lse_empty, sink_in_lse, lse_base}");
  MlaConventions c;
  for (const auto& [key, v] : j.items()) {
    if (key == "lse_empty") {
      const auto s = v.is_string() ? v.get<std::string>() : "";
      if (s == "+inf") c.lse_empty = LseEmpty::pos_inf;
      else if (s == "-inf") c.lse_empty = LseEmpty::neg_inf;
      else throw InvalidArgument(where + ".lse_empty", "must be \"+inf\" or \"-inf\"");
    } else if (key == "sink_in_lse") {
      if (!v.is_boolean()) throw InvalidArgument(where + ".sink_in_lse", "must be true or false");
      c.sink_in_lse = v.get<bool>();
    } else if (key == "lse_base") {
      const auto s = v.is_string() ? v.get<std::string>() : "";
      if (s == "e") c.lse_base = LseBase::e;
      else if (s == "2") c.lse_base = LseBase::two;
      else throw InvalidArgument(where + ".lse_base", "must be \"e\" or \"2\"");
    } else {
      throw InvalidArgument(where, fmt::format("unknown field '{}' (known: lse_empty, sink_in_lse, lse_base)", key));
    }
  }
  return c;
}

json conventions_to_json(const MlaConventions& c) {
  return {{"lse_empty", c.lse_empty == LseEmpty::pos_inf ? "+inf" : "-inf"},
          {"sink_in_lse", c.sink_in_lse},
          {"lse_base", c.lse_base == LseBase::e ? "e" : "2"}};
}

// ---- parameters -----------------------------------------------------------------------------------

void fail(const CaseFile& f, const std::string& tensor, const std::string& rule) {
  throw CaseFileError(f.source.empty() ? "<case>" : f.source, tensor, rule);
}

std::optional<std::int64_t> get_int(const CaseFile& f, const json& j, const std::string& key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  const json& v = j.at(key);
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 0x1p62) return static_cast<std::int64_t>(d);
  }
  fail(f, "", fmt::format("parameter '{}' must be an integer (got {})", key, v.dump()));
}

std::int64_t need_int(const CaseFile& f, const json& j, const std::string& key) {
  auto v = get_int(f, j, key);
  if (!v) fail(f, "", fmt::format("parameter '{}' is missing", key));
  return *v;
}

std::optional<double> get_double(const CaseFile& f, const json& j, const std::string& key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  const json& v = j.at(key);
  if (v.is_number()) return v.get<double>();
  fail(f, "", fmt::format("parameter '{}' must be a number (got {})", key, v.dump()));
}

std::optional<std::string> get_string(const CaseFile& f, const json& j, const std::string& key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  const json& v = j.at(key);
  if (v.is_string()) return v.get<std::string>();
  fail(f, "", fmt::format("parameter '{}' must be a string (got {})", key, v.dump()));
}

std::optional<bool> get_bool(const CaseFile& f, const json& j, const std::string& key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  const json& v = j.at(key);
  if (v.is_boolean()) return v.get<bool>();
  fail(f, "", fmt::format("parameter '{}' must be true or false (got {})", key, v.dump()));
}

json op_params(const CaseFile& f, Op op) {
  if (!f.has_params()) fail(f, "", "has no case parameters (metadata key \"dsa\")");
  json p = f.params();
  const auto name = get_string(f, p, "op");
  if (!name) fail(f, "", "parameter 'op' is missing");
  if (*name != to_string(op)) fail(f, "", fmt::format("holds op '{}', not '{}'", *name, to_string(op)));
  return p;
}

void reject_unknown_tensors(const CaseFile& f, const Schema& schema) {
  for (const Tensor& t : f.tensors) {
    if (t.name.rfind("gold.", 0) == 0) continue;
    bool known = false;
    for (const TensorSpec& s : schema.tensors) known = known || s.name == t.name;
    if (!known) {
      std::string names;
      for (const TensorSpec& s : schema.tensors) names += (names.empty() ? "" : ", ") + s.name;
      fail(f, t.name, fmt::format("is not a tensor of op {} (known: {}, gold.*)", schema.op, names));
    }
  }
}

// ---- caches -----------------------------------------------------------------------------------------

namespace {

const Tensor& byte_tensor(const CaseFile& f, const std::string& name, bool allow_bf16) {
  const Tensor& t = f.at(name);
  if (!(t.dtype == DType::U8 || (allow_bf16 && t.dtype == DType::BF16)))
    fail(f, name, fmt::format("holds {} but a cache travels as U8 bytes{}", to_string(t.dtype),
                              allow_bf16 ? " (or BF16 for the BF16 layout)" : ""));
  return t;
}

}  // namespace

MlaCacheBuffer mla_cache_from(const CaseFile& f, const json& geo, const std::string& values,
                              const std::string& scales) {
  if (!geo.is_object()) fail(f, values, "its geometry parameter must be an object {layout, page_tokens, ...}");
  const auto layout_s = get_string(f, geo, "layout");
  if (!layout_s) fail(f, values, "geometry parameter 'layout' is missing");
  MlaCacheGeometry g;
  try {
    g.layout = mla_layout_from(*layout_s, values + ".layout");
    g.fp8 = fp8_from(get_string(f, geo, "fp8").value_or("e4m3fn"), values + ".fp8");
  } catch (const InvalidArgument& e) {
    fail(f, values, e.what());
  }
  g.bf16_dim_qk = static_cast<int>(get_int(f, geo, "bf16_dim_qk").value_or(576));
  const Tensor& t = byte_tensor(f, values, g.layout == MlaLayout::BF16);
  const auto bytes = static_cast<std::int64_t>(t.bytes.size());
  auto page = get_int(f, geo, "page_tokens");
  if (!page && t.shape.size() >= 3) page = t.shape[1];
  if (!page) fail(f, values, "geometry parameter 'page_tokens' is missing (and the tensor is not [num_blocks][P][...])");
  if (*page < 1 || *page > INT32_MAX) fail(f, values, fmt::format("page_tokens must be in [1, 2^31) (got {})", *page));
  g.page_tokens = static_cast<std::int32_t>(*page);
  auto nb = get_int(f, geo, "num_blocks");
  auto stride = get_int(f, geo, "block_stride_bytes");
  if (!nb && t.shape.size() >= 2) nb = t.shape[0];
  if (!stride) {
    if (nb && *nb > 0 && t.shape.size() >= 2) stride = bytes / *nb;
    else stride = g.page_bytes();
  }
  if (!nb) nb = bytes == 0 ? 0 : (*stride > 0 ? (bytes - g.page_bytes()) / *stride + 1 : 0);
  g.num_blocks = *nb;
  g.block_stride_bytes = *stride;
  g.scale_block_stride_bytes = get_int(f, geo, "scale_block_stride_bytes").value_or(g.scale_page_bytes());
  try {
    validate(g, values.c_str());
  } catch (const InvalidArgument& e) {
    fail(f, values, e.what());
  }
  if (bytes != g.values_bytes())
    fail(f, values, fmt::format("holds {} bytes but its geometry ({} blocks of {} tokens, block stride {} B) needs {}",
                                bytes, g.num_blocks, g.page_tokens, g.block_stride_bytes, g.values_bytes()));
  MlaCacheBuffer c(g);
  std::copy(t.bytes.begin(), t.bytes.end(), c.values.begin());
  if (g.layout == MlaLayout::MODEL1_SPLIT) {
    if (!f.find(scales)) fail(f, scales, "is missing: a MODEL1_SPLIT cache holds its scales in a second tensor");
    const Tensor& s = byte_tensor(f, scales, false);
    if (static_cast<std::int64_t>(s.bytes.size()) != g.scales_bytes())
      fail(f, scales, fmt::format("holds {} bytes but the geometry needs {}", s.bytes.size(), g.scales_bytes()));
    std::copy(s.bytes.begin(), s.bytes.end(), c.scales.begin());
  } else if (f.find(scales)) {
    fail(f, scales, fmt::format("is given but layout {} keeps its scales inside the value tensor", to_string(g.layout)));
  }
  return c;
}

json mla_geometry_to_json(const MlaCacheGeometry& g) {
  json j = {{"layout", to_string(g.layout)},
            {"fp8", to_string(g.fp8)},
            {"page_tokens", g.page_tokens},
            {"num_blocks", g.num_blocks},
            {"block_stride_bytes", g.block_stride_bytes}};
  if (g.layout == MlaLayout::MODEL1_SPLIT) j["scale_block_stride_bytes"] = g.scale_block_stride_bytes;
  if (g.layout == MlaLayout::BF16) j["bf16_dim_qk"] = g.bf16_dim_qk;
  return j;
}

void add_mla_cache(CaseFile& f, const MlaCacheBuffer& c, const std::string& values, const std::string& scales) {
  add_tensor(f, values, {static_cast<std::int64_t>(c.values.size())}, c.values);
  if (c.geo.layout == MlaLayout::MODEL1_SPLIT)
    add_tensor(f, scales, {static_cast<std::int64_t>(c.scales.size())}, c.scales);
}

IndexKCacheBuffer index_k_cache_from(const CaseFile& f, const json& geo, const std::string& values) {
  if (!geo.is_object()) fail(f, values, "its geometry parameter must be an object {layout, page_tokens, ...}");
  IndexKGeometry g;
  try {
    g.layout = index_k_layout_from(get_string(f, geo, "layout").value_or("standard"), values + ".layout");
    g.fp8 = fp8_from(get_string(f, geo, "fp8").value_or("e4m3fn"), values + ".fp8");
  } catch (const InvalidArgument& e) {
    fail(f, values, e.what());
  }
  const Tensor& t = byte_tensor(f, values, false);
  const auto bytes = static_cast<std::int64_t>(t.bytes.size());
  const std::int64_t page = need_int(f, geo, "page_tokens");
  const std::int64_t dim = need_int(f, geo, "head_dim");
  if (page < 1 || page > INT32_MAX) fail(f, values, fmt::format("page_tokens must be in [1, 2^31) (got {})", page));
  if (dim < 1 || dim > INT32_MAX) fail(f, values, fmt::format("head_dim must be in [1, 2^31) (got {})", dim));
  g.page_tokens = static_cast<std::int32_t>(page);
  g.head_dim = static_cast<std::int32_t>(dim);
  auto nb = get_int(f, geo, "num_blocks");
  auto stride = get_int(f, geo, "block_stride_bytes");
  if (!nb && t.shape.size() >= 2) nb = t.shape[0];
  if (!stride) stride = nb && *nb > 0 && t.shape.size() >= 2 ? bytes / *nb : IndexKGeometry::packed(g.layout, g.fp8, 1, g.page_tokens, g.head_dim).block_stride_bytes;
  if (!nb) nb = bytes == 0 ? 0 : (*stride > 0 ? (bytes - g.page_bytes()) / *stride + 1 : 0);
  g.num_blocks = *nb;
  g.block_stride_bytes = *stride;
  try {
    validate(g, values.c_str());
  } catch (const InvalidArgument& e) {
    fail(f, values, e.what());
  }
  if (bytes != g.bytes())
    fail(f, values, fmt::format("holds {} bytes but its geometry ({} blocks of {} tokens, block stride {} B) needs {}",
                                bytes, g.num_blocks, g.page_tokens, g.block_stride_bytes, g.bytes()));
  IndexKCacheBuffer c(g);
  std::copy(t.bytes.begin(), t.bytes.end(), c.bytes.begin());
  return c;
}

json index_k_geometry_to_json(const IndexKGeometry& g) {
  return {{"layout", to_string(g.layout)},         {"fp8", to_string(g.fp8)},
          {"page_tokens", g.page_tokens},          {"num_blocks", g.num_blocks},
          {"head_dim", g.head_dim},                {"block_stride_bytes", g.block_stride_bytes}};
}

// ---- random cases ---------------------------------------------------------------------------------

std::int64_t uniform_int(Rng& rng, std::int64_t lo, std::int64_t hi) {
  if (hi <= lo) return lo;
  return lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
}

std::vector<std::uint16_t> random_bf16(Rng& rng, std::int64_t n, float amp) {
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<std::uint16_t> c(static_cast<std::size_t>(n));
  for (auto& x : c) x = f32_to_bf16(u(rng));
  return c;
}

void fill_mla_cache(MlaCacheBuffer& c, Rng& rng, ScalePolicy policy) {
  const std::int64_t n = c.geo.capacity_tokens();
  const int D = c.geo.dim_qk();
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), amp(0.05f, 4.0f);
  std::vector<float> rows(static_cast<std::size_t>(n * D));
  for (std::int64_t i = 0; i < n; ++i) {
    const float a = amp(rng);
    for (int d = 0; d < D; ++d) rows[static_cast<std::size_t>(i * D + d)] = u(rng) * a;
  }
  std::vector<std::int64_t> slots(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) slots[static_cast<std::size_t>(i)] = i;
  MlaQuantParams qp;
  qp.policy = c.geo.layout == MlaLayout::V32 ? policy : ScalePolicy::pow2_ceil;
  quantize_kv(rows, n, D, slots, c.span(), qp);
}

std::vector<std::int32_t> nasty_indices(std::int64_t range) {
  std::vector<std::int32_t> v = {-1, INT_MIN, INT_MIN + 1, -123456, INT_MAX, -2};
  if (range < INT_MAX) v.push_back(static_cast<std::int32_t>(range));
  if (range + 1 < INT_MAX) v.push_back(static_cast<std::int32_t>(range + 1));
  return v;
}

void random_selection(Rng& rng, std::int64_t B, std::int64_t S_q, std::int32_t topk, std::int64_t num_blocks,
                      std::int32_t page_tokens, IndexMode mode, std::int64_t max_blocks, bool lengths,
                      std::vector<std::int32_t>& block_table, std::vector<std::int32_t>& indices,
                      std::vector<std::int32_t>& topk_length) {
  const std::int64_t range = mode == IndexMode::physical ? num_blocks * page_tokens : max_blocks * page_tokens;
  const std::vector<std::int32_t> nasty = nasty_indices(range);
  block_table.clear();
  if (mode == IndexMode::logical) {
    block_table.resize(static_cast<std::size_t>(B * max_blocks));
    const std::int32_t bad[] = {-1, INT_MIN, INT_MAX, static_cast<std::int32_t>(num_blocks)};
    for (auto& e : block_table)
      e = rng() % 8 == 0 || num_blocks == 0 ? bad[rng() % 4] : static_cast<std::int32_t>(rng() % num_blocks);
  }
  indices.resize(static_cast<std::size_t>(B * S_q * topk));
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const auto roll = rng() % 10;
    if (roll < 7 && range > 0) indices[i] = static_cast<std::int32_t>(rng() % range);
    else if (roll < 8 && i > 0) indices[i] = indices[rng() % i];  // a duplicate (of a valid or invalid index)
    else indices[i] = nasty[rng() % nasty.size()];
  }
  topk_length.clear();
  if (lengths) {
    topk_length.resize(static_cast<std::size_t>(B));
    for (auto& l : topk_length) l = static_cast<std::int32_t>(uniform_int(rng, -1, topk + 1));
  }
}

void referenced_tokens(const MlaCacheGeometry& g, IndexMode mode, const std::vector<std::int32_t>& block_table,
                       std::int64_t max_blocks, const std::vector<std::int32_t>& indices, std::int32_t topk,
                       const std::vector<std::int32_t>& lengths, std::int64_t rows, std::int64_t rows_per_batch,
                       TokenSet& out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t b = r / rows_per_batch;
    const std::int32_t eligible = eligible_slots(topk, lengths.empty() ? nullptr : lengths.data(), b);
    const std::int32_t* bt = mode == IndexMode::logical ? block_table.data() + b * max_blocks : nullptr;
    for (std::int32_t j = 0; j < eligible; ++j) {
      const MlaTokenRef ref = resolve_slot(mode, indices[static_cast<std::size_t>(r * topk + j)], bt, max_blocks,
                                           g.num_blocks, g.page_tokens);
      if (ref.valid()) out.insert({ref.block, ref.t});
    }
  }
}

void poison_unreferenced(MlaCacheBuffer& c, const TokenSet& used) {
  for (std::int64_t b = 0; b < c.geo.num_blocks; ++b)
    for (std::int32_t t = 0; t < c.geo.page_tokens; ++t)
      if (!used.count({b, t})) poison_mla_token(c, b, t);
}

std::vector<std::uint8_t> random_fp8(Rng& rng, std::int64_t n, Fp8Format f, float amp) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::uint8_t> c(static_cast<std::size_t>(n));
  for (auto& x : c) x = f32_to_fp8(normal(rng) * amp, f, Overflow::saturate);
  return c;
}

json default_judging_json(Op op) {
  json j = {{"precision", "bf16p"},
            {"sentinel", {{"bf16", fmt::format("{:#06x}", kSentinelBf16)}, {"f32", fmt::format("{:#010x}", kSentinelF32)}}}};
  if (op == Op::sparse_mla_decode || op == Op::sparse_mla_prefill) j["claims"] = {{"num_splits", 0}, {"tile_slots", 0}};
  if (op == Op::paged_mqa_logits || op == Op::mqa_logits) j["write_contract"] = "all";
  return j;
}

// ---- random MLA pieces -----------------------------------------------------------------------

// The layout knob of a random MLA case: "BF16" (576) and "BF16-512" name the two dense widths.
MlaCacheGeometry random_mla_geometry(Rng& rng, const std::string& layout, Fp8Format fp8, std::int32_t page,
                                     std::int64_t num_blocks) {
  const bool bf16_512 = layout == "BF16-512";
  const MlaLayout l = bf16_512 ? MlaLayout::BF16 : mla_layout_from(layout, "layout");
  MlaCacheGeometry g = MlaCacheGeometry::packed(l, fp8, num_blocks, page, bf16_512 ? 512 : 576);
  g.block_stride_bytes += pick<std::int64_t>(rng, {0, 0, 64});
  if (l == MlaLayout::MODEL1_SPLIT) g.scale_block_stride_bytes += pick<std::int64_t>(rng, {0, 0, 8});
  return g;
}

std::string random_mla_layout(Rng& rng, const std::optional<std::string>& knob, int dim_qk) {
  if (knob) return *knob;
  if (dim_qk == 576) return pick<std::string>(rng, {"V32", "V32", "BF16"});
  if (dim_qk == 512) return pick<std::string>(rng, {"MODEL1", "MODEL1_SPLIT", "BF16-512"});
  return pick<std::string>(rng, {"V32", "MODEL1", "MODEL1_SPLIT", "BF16", "BF16-512"});
}

ReaderModel random_reader(Rng& rng, const std::optional<std::string>& knob) {
  if (knob) return reader_from(json(*knob), "reader");
  return pick<ReaderModel>(rng, {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(), ReaderModel::flashmla_sm100(),
                                 ReaderModel::exact_fp32()});
}

MlaConventions random_conventions(Rng& rng, const std::optional<std::string>& knob) {
  if (knob) return conventions_from(json(*knob), "conventions");
  return pick<MlaConventions>(rng, {MlaConventions::flashmla(), MlaConventions::xkernels(),
                                    MlaConventions::flashmla_prefill_2025()});
}

std::vector<float> random_sink(Rng& rng, std::int32_t H, const std::optional<std::string>& knob) {
  const std::string kind = knob ? *knob : pick<std::string>(rng, {"none", "finite", "inf"});
  if (kind == "none") return {};
  if (kind != "finite" && kind != "inf") throw InvalidArgument("sink", fmt::format("unknown value '{}' (known: none, finite, inf)", kind));
  std::uniform_real_distribution<float> u(-3.0f, 6.0f);
  std::vector<float> s(static_cast<std::size_t>(H));
  for (auto& v : s) {
    v = u(rng);
    if (kind == "inf") {
      const auto roll = rng() % 4;
      if (roll == 0) v = std::numeric_limits<float>::infinity();
      if (roll == 1) v = -std::numeric_limits<float>::infinity();
    }
  }
  return s;
}

float random_sm_scale(Rng& rng) {
  if (rng() % 2 == 0) return 0.0f;
  return std::uniform_real_distribution<float>(0.02f, 0.1f)(rng);
}

std::vector<std::uint16_t> random_query(Rng& rng, std::int64_t n) {
  // Amplitudes from flat to peaky softmax rows.
  return random_bf16(rng, n, 2.0f * pick<float>(rng, {1.0f, 2.0f, 4.0f}));
}

Fp8Format random_fp8_format(Rng& rng, const std::optional<std::string>& knob) {
  return knob ? fp8_from(*knob, "fp8") : pick<Fp8Format>(rng, {Fp8Format::e4m3fn, Fp8Format::e4m3fnuz});
}


// ---- attention outputs ------------------------------------------------------------------------

AttentionOutputs read_attention_outputs(const CaseFile& out_file, const Schema& schema, const Bindings& bound) {
  Schema outs;
  outs.op = schema.op;
  outs.allow_extra = true;
  for (const auto& t : schema.tensors)
    if (t.name == "out" || t.name == "lse" || t.name == "max_logits") outs.tensors.push_back(t);
  if (!out_file.find("out"))
    fail(out_file, "out", "is missing: the case holds no kernel outputs to check (write them as \"out\", \"lse\")");
  check_schema(out_file, outs, bound);
  AttentionOutputs o;
  o.out = out_file.get<std::uint16_t>("out", DType::BF16);
  if (out_file.find("lse")) o.lse = out_file.get<float>("lse");
  if (out_file.find("max_logits")) o.max_logits = out_file.get<float>("max_logits");
  return o;
}

void add_attention_outputs(CaseFile& f, const SparseMlaGold& g, const std::vector<std::int64_t>& row_shape,
                           bool max_logits, const std::string& which, const std::function<void(const SparseMlaOutputs&)>& fast) {
  std::vector<std::int64_t> out_shape = row_shape;
  out_shape.push_back(g.D_v);
  if (which == "gold" || which == "fast") {
    std::vector<std::uint16_t> out(g.out.size(), kSentinelBf16);
    std::vector<float> lse(g.lse.size(), f32_from_bits(kSentinelF32)), ml(g.lse.size(), f32_from_bits(kSentinelF32));
    const SparseMlaOutputs o{out, lse, max_logits ? std::span<float>(ml) : std::span<float>()};
    if (which == "gold") round_gold_outputs(g, o);
    else fast(o);
    add_tensor(f, "out", out_shape, out, DType::BF16);
    add_tensor(f, "lse", row_shape, lse);
    if (max_logits) add_tensor(f, "max_logits", row_shape, ml);
  } else if (which != "none") {
    throw InvalidArgument("outputs", fmt::format("unknown value '{}' (known: none, gold, fast)", which));
  }
}

void add_attention_gold_tensors(CaseFile& f, const SparseMlaGold& g, const std::vector<std::int64_t>& row_shape,
                                bool max_logits) {
  std::vector<std::int64_t> out_shape = row_shape;
  out_shape.push_back(g.D_v);
  add_tensor(f, "gold.out", out_shape, g.out);
  add_tensor(f, "gold.lse", row_shape, g.lse);
  if (max_logits) add_tensor(f, "gold.max_logits", row_shape, g.max_logits);
}

// The schema less its byte-structured (free-shaped) cache tensors, for check_schema.
Schema without_caches(Schema s) {
  std::erase_if(s.tensors, [](const TensorSpec& t) { return t.name.find("kv_cache") != std::string::npos || t.name == "kv" || t.name == "kv_scales"; });
  s.allow_extra = true;
  return s;
}


}  // namespace dsa::detail
