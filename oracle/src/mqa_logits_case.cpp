// mqa_logits cases (SPEC §6.3): random generation, the case-file schema and conversions, and the
// check of a case file's kernel logits.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "case_common.hpp"
#include "dsa/error.hpp"
#include "dsa/op_cases.hpp"

namespace dsa {

using detail::json;

MqaLogitsParams MqaLogitsCase::params(std::span<float> logits, std::int64_t row_stride) const {
  MqaLogitsParams p;
  p.seq_len = seq_len;
  p.seq_len_kv = seq_len_kv;
  p.num_heads = num_heads;
  p.head_dim = head_dim;
  p.q = q;
  p.q_fp8 = q_fp8;
  p.k = k;
  p.k_fp8 = k_fp8;
  p.k_scales = k_scales;
  p.weights = weights;
  p.ks = ks;
  p.ke = ke;
  p.k_scale_at = k_scale_at;
  p.logits = logits;
  p.logits_row_stride = row_stride;
  return p;
}

MqaLogitsCase random_mqa_logits_case(const RandomCaseSpec& s) {
  using namespace detail;
  Rng rng(s.seed * 0x9E3779B97F4A7C15ull + 0x3C0F);
  MqaLogitsCase c;
  c.seq_len = s.S_q.value_or(uniform_int(rng, 1, 8));
  c.seq_len_kv = s.S_kv.value_or(uniform_int(rng, 1, 400));
  c.num_heads = s.H.value_or(pick<std::int64_t>(rng, {1, 2, 4, 8, 16, 32}));
  c.head_dim = s.head_dim.value_or(pick<std::int64_t>(rng, {32, 64, 128}));
  c.q_fp8 = random_fp8_format(rng, s.fp8);
  c.k_fp8 = random_fp8_format(rng, s.fp8);
  c.k_scale_at = s.k_scale_at ? k_scale_at_from(*s.k_scale_at, "k_scale_at")
                              : pick<KScaleAt>(rng, {KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16});
  // Ranges: causal-like windows [ks, ke), some empty, some reaching the end.
  c.ks.resize(static_cast<std::size_t>(c.seq_len));
  c.ke.resize(static_cast<std::size_t>(c.seq_len));
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(c.seq_len_kv), 0);
  for (std::int64_t i = 0; i < c.seq_len; ++i) {
    std::int64_t a = uniform_int(rng, 0, c.seq_len_kv), b = uniform_int(rng, 0, c.seq_len_kv);
    if (a > b) std::swap(a, b);
    if (rng() % 8 == 0) b = a;  // empty
    c.ks[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(a);
    c.ke[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(b);
    for (std::int64_t t = a; t < b; ++t) seen[static_cast<std::size_t>(t)] = 1;
  }
  c.q = random_fp8(rng, c.seq_len * c.num_heads * c.head_dim, c.q_fp8, static_cast<float>(pick<int>(rng, {1, 4, 16})));
  c.k = random_fp8(rng, c.seq_len_kv * c.head_dim, c.k_fp8, 64.0f);
  c.k_scales.resize(static_cast<std::size_t>(c.seq_len_kv));
  std::uniform_real_distribution<float> scale(0.001f, 0.1f);  // not powers of two: the reader models differ
  for (auto& x : c.k_scales) x = scale(rng);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  c.weights.resize(static_cast<std::size_t>(c.seq_len * c.num_heads));
  for (auto& w : c.weights) w = normal(rng) * 0.25f;
  if (s.poison)
    for (std::int64_t t = 0; t < c.seq_len_kv; ++t)
      if (!seen[static_cast<std::size_t>(t)]) {
        std::fill_n(c.k.begin() + t * c.head_dim, c.head_dim, fp8_nan_code(c.k_fp8));
        c.k_scales[static_cast<std::size_t>(t)] = std::numeric_limits<float>::quiet_NaN();
      }
  return c;
}

namespace detail {

Schema mqa_logits_schema() {
  Schema s;
  s.op = "mqa_logits";
  s.tensors = {
      {"q", {DType::U8, DType::F8_E4M3}, {"S", "H", "D"}},
      {"k", {DType::U8, DType::F8_E4M3}, {"S_kv", "D"}},
      {"k_scales", DType::F32, {"S_kv"}},
      {"weights", DType::F32, {"S", "H"}},
      {"ks", DType::I32, {"S"}},
      {"ke", DType::I32, {"S"}},
      {"logits", DType::F32, {"S", "row_stride"}, false},
  };
  return s;
}

}  // namespace detail

CaseFile to_case_file(const MqaLogitsCase& c, const nlohmann::json& judging) {
  using namespace detail;
  CaseFile f;
  json p = {{"op", "mqa_logits"},
            {"q_fp8", to_string(c.q_fp8)},
            {"k_fp8", to_string(c.k_fp8)},
            {"k_scale_at", to_string(c.k_scale_at)}};
  add_tensor(f, "q", {c.seq_len, c.num_heads, c.head_dim}, c.q);
  add_tensor(f, "k", {c.seq_len_kv, c.head_dim}, c.k);
  add_tensor(f, "k_scales", {c.seq_len_kv}, c.k_scales);
  add_tensor(f, "weights", {c.seq_len, c.num_heads}, c.weights);
  add_tensor(f, "ks", {c.seq_len}, c.ks);
  add_tensor(f, "ke", {c.seq_len}, c.ke);
  p.update(judging);
  f.set_params(p);
  return f;
}

MqaLogitsCase mqa_logits_case_from_file(const CaseFile& f) {
  using namespace detail;
  const json p = op_params(f, Op::mqa_logits);
  reject_unknown_tensors(f, mqa_logits_schema());
  const Bindings b = check_schema(f, without_caches(mqa_logits_schema()));
  MqaLogitsCase c;
  c.seq_len = b.at("S");
  c.seq_len_kv = b.at("S_kv");
  c.num_heads = b.at("H");
  c.head_dim = b.at("D");
  try {
    c.q_fp8 = fp8_from(get_string(f, p, "q_fp8").value_or("e4m3fn"), "q_fp8");
    c.k_fp8 = fp8_from(get_string(f, p, "k_fp8").value_or("e4m3fn"), "k_fp8");
    c.k_scale_at = k_scale_at_from(get_string(f, p, "k_scale_at").value_or("after_head_sum"), "k_scale_at");
  } catch (const CaseFileError&) {
    throw;
  } catch (const InvalidArgument& e) {
    fail(f, "", e.what());
  }
  if (f.at("q").dtype == DType::F8_E4M3 && c.q_fp8 != Fp8Format::e4m3fn) fail(f, "q", "is F8_E4M3 but parameter q_fp8 says e4m3fnuz");
  if (f.at("k").dtype == DType::F8_E4M3 && c.k_fp8 != Fp8Format::e4m3fn) fail(f, "k", "is F8_E4M3 but parameter k_fp8 says e4m3fnuz");
  c.q = f.get<std::uint8_t>("q", f.at("q").dtype);
  c.k = f.get<std::uint8_t>("k", f.at("k").dtype);
  c.k_scales = f.get<float>("k_scales");
  c.weights = f.get<float>("weights");
  c.ks = f.get<std::int32_t>("ks");
  c.ke = f.get<std::int32_t>("ke");
  if (c.seq_len_kv > 0 && c.seq_len > (std::int64_t{1} << 31) / c.seq_len_kv)
    fail(f, "", fmt::format("S·S_kv = {}·{} logits are too many to judge", c.seq_len, c.seq_len_kv));
  try {
    std::vector<float> scratch(static_cast<std::size_t>(c.seq_len * c.seq_len_kv));
    validate(c.params(scratch, c.seq_len_kv));
  } catch (const InvalidArgument& e) {
    fail(f, "", e.what());
  }
  return c;
}

namespace detail {

CaseResult check_mqa_logits(const CaseFile& in, const CaseFile& outs, const json& params) {
  const MqaLogitsCase c = mqa_logits_case_from_file(in);
  if (!outs.find("logits"))
    fail(outs, "logits", "is missing: the case holds no kernel outputs to check (write them as \"logits\")");
  const Tensor& t = outs.at("logits");
  if (t.dtype != DType::F32 || t.shape.size() != 2)
    fail(outs, "logits", fmt::format("must be F32 [S][row_stride] (got {} of rank {})", to_string(t.dtype), t.shape.size()));
  if (t.shape[0] != c.seq_len) fail(outs, "logits", fmt::format("has {} rows but S = {}", t.shape[0], c.seq_len));
  if (t.shape[1] < c.seq_len_kv)
    fail(outs, "logits", fmt::format("rows hold {} positions but S_kv is {}", t.shape[1], c.seq_len_kv));
  const std::vector<float> logits = outs.get<float>("logits");
  return judge_mqa_logits(c.params(), logits, t.shape[1], judge_options_from_json(params, Op::mqa_logits));
}

CaseFile make_mqa_logits(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors) {
  const MqaLogitsCase c = random_mqa_logits_case(spec);
  json judging = default_judging_json(Op::mqa_logits);
  judging["seed"] = spec.seed;
  CaseFile f = to_case_file(c, judging);
  const std::int64_t W = c.seq_len_kv;
  if (outputs == "gold" || outputs == "fast") {
    std::vector<float> logits(static_cast<std::size_t>(c.seq_len * W), f32_from_bits(kSentinelF32));
    const MqaLogitsParams p = c.params(logits, W);
    if (outputs == "gold") gold::mqa_logits(p);
    else fast::mqa_logits(p);
    add_tensor(f, "logits", {c.seq_len, W}, logits);
  } else if (outputs != "none") {
    throw InvalidArgument("outputs", fmt::format("unknown value '{}' (known: none, gold, fast)", outputs));
  }
  if (gold_tensors) {
    const LogitsBudget b = mqa_logits_budget(c.params(), kernel_precision("bf16p", Op::mqa_logits));
    add_tensor(f, "gold.logits", {c.seq_len, W}, b.gold);
  }
  return f;
}

}  // namespace detail

}  // namespace dsa
