// topk cases (SPEC §6.4): random logits with ties, −inf and NaN, visible ranges, k; the case-file
// schema and conversions, and the check of a case file's kernel indices.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "case_common.hpp"
#include "dsa/error.hpp"
#include "dsa/op_cases.hpp"

namespace dsa {

using detail::json;

TopkCase random_topk_case(const RandomCaseSpec& s) {
  using namespace detail;
  Rng rng(s.seed * 0x9E3779B97F4A7C15ull + 0x70C4);
  TopkCase c;
  c.rows = s.rows.value_or(uniform_int(rng, 1, 8));
  c.width = s.width.value_or(rng() % 4 == 0 ? uniform_int(rng, 1, 40) : uniform_int(rng, 40, 3000));
  c.k = s.k.value_or(pick<std::int64_t>(rng, {1, 2, 16, 64, 256, 2048}));
  if (!s.k && rng() % 4 == 0) c.k = uniform_int(rng, 1, c.width + 3);
  // Few distinct values, so that ties at the k-th value are common.
  const int levels = pick<int>(rng, {4, 64, 100000});
  std::normal_distribution<float> normal(0.0f, 1.0f);
  c.logits.resize(static_cast<std::size_t>(c.rows * c.width));
  for (auto& x : c.logits) {
    x = std::round(normal(rng) * static_cast<float>(levels) / 4.0f) / static_cast<float>(levels);
    const auto roll = rng() % 64;
    if (roll == 0) x = -std::numeric_limits<float>::infinity();
    if (roll == 1) x = std::numeric_limits<float>::infinity();
    if (roll == 2 && rng() % 4 == 0) x = std::numeric_limits<float>::quiet_NaN();
    if (roll == 3) x = -0.0f;
  }
  c.ranges.resize(static_cast<std::size_t>(c.rows));
  for (auto& r : c.ranges) {
    std::int64_t a = uniform_int(rng, 0, c.width), b = uniform_int(rng, 0, c.width);
    if (a > b) std::swap(a, b);
    if (rng() % 3 == 0) a = 0, b = std::max<std::int64_t>(b, c.width - uniform_int(rng, 0, 3));  // prefix, as decode
    r = {a, b};
  }
  return c;
}

namespace detail {

Schema topk_schema() {
  Schema s;
  s.op = "topk";
  s.tensors = {
      {"logits", DType::F32, {"rows", "width"}},
      {"visible_begin", {DType::I32, DType::I64}, {"rows"}},
      {"visible_end", {DType::I32, DType::I64}, {"rows"}},
      {"indices", DType::I32, {"rows", "k"}, false},
  };
  return s;
}

}  // namespace detail

CaseFile to_case_file(const TopkCase& c, const nlohmann::json& judging) {
  using namespace detail;
  CaseFile f;
  json p = {{"op", "topk"}, {"k", c.k}};
  std::vector<std::int64_t> begin, end;
  for (const auto& r : c.ranges) {
    begin.push_back(r.begin);
    end.push_back(r.end);
  }
  add_tensor(f, "logits", {c.rows, c.width}, c.logits);
  add_tensor(f, "visible_begin", {c.rows}, begin);
  add_tensor(f, "visible_end", {c.rows}, end);
  p.update(judging);
  f.set_params(p);
  return f;
}

TopkCase topk_case_from_file(const CaseFile& f) {
  using namespace detail;
  const json p = op_params(f, Op::topk);
  reject_unknown_tensors(f, topk_schema());
  Schema schema = topk_schema();
  std::erase_if(schema.tensors, [](const TensorSpec& t) { return t.name == "indices"; });
  schema.allow_extra = true;
  const Bindings b = check_schema(f, schema);
  TopkCase c;
  c.rows = b.at("rows");
  c.width = b.at("width");
  c.k = need_int(f, p, "k");
  if (c.k < 1) fail(f, "", fmt::format("parameter 'k' must be ≥ 1 (got {})", c.k));
  c.logits = f.get<float>("logits");
  auto ints = [&](const char* name) {
    std::vector<std::int64_t> v;
    if (f.at(name).dtype == DType::I32)
      for (auto x : f.get<std::int32_t>(name)) v.push_back(x);
    else
      v = f.get<std::int64_t>(name);
    return v;
  };
  const auto begin = ints("visible_begin"), end = ints("visible_end");
  c.ranges.resize(static_cast<std::size_t>(c.rows));
  for (std::int64_t r = 0; r < c.rows; ++r) {
    const std::int64_t a = begin[static_cast<std::size_t>(r)], e = end[static_cast<std::size_t>(r)];
    if (a < 0 || e < a || e > c.width)
      fail(f, "visible_end", fmt::format("row {}: range [{}, {}) is not within [0, width = {})", r, a, e, c.width));
    c.ranges[static_cast<std::size_t>(r)] = {a, e};
  }
  return c;
}

namespace detail {

CaseResult check_topk(const CaseFile& in, const CaseFile& outs, const json& params) {
  const TopkCase c = topk_case_from_file(in);
  if (!outs.find("indices"))
    fail(outs, "indices", "is missing: the case holds no kernel outputs to check (write them as \"indices\")");
  outs.expect("indices", DType::I32, {c.rows, c.k});
  const std::vector<std::int32_t> idx = outs.get<std::int32_t>("indices");
  return judge_topk(c.logits, c.rows, c.width, c.ranges, c.k, idx, judge_options_from_json(params, Op::topk));
}

CaseFile make_topk(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors) {
  const TopkCase c = random_topk_case(spec);
  json judging = default_judging_json(Op::topk);
  judging["seed"] = spec.seed;
  CaseFile f = to_case_file(c, judging);
  if (outputs == "gold" || outputs == "fast" || gold_tensors) {
    // One reference selection: it is both the gold and the fast top-k.
    std::vector<std::int32_t> idx(static_cast<std::size_t>(c.rows * c.k));
    topk_indices(c.logits, c.rows, c.width, c.ranges, c.k, idx);
    if (outputs != "none") add_tensor(f, "indices", {c.rows, c.k}, idx);
    if (gold_tensors) add_tensor(f, "gold.indices", {c.rows, c.k}, idx);
  } else if (outputs != "none") {
    throw InvalidArgument("outputs", fmt::format("unknown value '{}' (known: none, gold, fast)", outputs));
  }
  return f;
}

}  // namespace detail

}  // namespace dsa
