// The op-independent front of case files: which op a case holds, its schema, its judging options,
// `dsa-oracle make-case` and `dsa-oracle check` dispatched to the per-op files.
#include <fmt/format.h>

#include <cmath>

#include "case_common.hpp"
#include "dsa/error.hpp"
#include "dsa/op_cases.hpp"

namespace dsa {

using detail::json;

Op case_op(const CaseFile& f) {
  if (!f.has_params()) detail::fail(f, "", "has no case parameters (metadata key \"dsa\")");
  const json p = f.params();
  const auto name = detail::get_string(f, p, "op");
  if (!name) detail::fail(f, "", "parameter 'op' is missing");
  const auto op = op_from_string(*name);
  if (!op)
    detail::fail(f, "", fmt::format("parameter 'op' is '{}' (known: sparse_mla_decode, sparse_mla_prefill, "
                                    "paged_mqa_logits, mqa_logits, topk)", *name));
  return *op;
}

Schema op_schema(Op op) {
  switch (op) {
    case Op::sparse_mla_decode: return detail::sparse_mla_decode_schema();
    case Op::sparse_mla_prefill: return detail::sparse_mla_prefill_schema();
    case Op::paged_mqa_logits: return detail::paged_mqa_logits_schema();
    case Op::mqa_logits: return detail::mqa_logits_schema();
    case Op::topk: return detail::topk_schema();
  }
  return {};
}

namespace {

std::uint32_t bits_from(const json& v, const std::string& where, std::uint32_t max) {
  std::uint64_t x = 0;
  if (v.is_number_unsigned()) {
    x = v.get<std::uint64_t>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    std::size_t used = 0;
    try {
      x = std::stoull(s, &used, 0);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size()) throw InvalidArgument(where, fmt::format("'{}' is not an integer bit pattern", s));
  } else {
    throw InvalidArgument(where, "must be a bit pattern: an unsigned integer or a string such as \"0x7fa5\"");
  }
  if (x > max) throw InvalidArgument(where, fmt::format("bit pattern {:#x} does not fit (max {:#x})", x, max));
  return static_cast<std::uint32_t>(x);
}

double unit_from(const json& v, const std::string& where) {
  if (!v.is_number() || !(v.get<double>() >= 0.0) || !std::isfinite(v.get<double>()))
    throw InvalidArgument(where, fmt::format("must be a finite number ≥ 0 (got {})", v.dump()));
  return v.get<double>();
}

int claim_from(const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 1'000'000)
    throw InvalidArgument(where, fmt::format("must be an integer in [0, 10^6] (0 = unknown) (got {})", v.dump()));
  return static_cast<int>(v.get<std::int64_t>());
}

}  // namespace

JudgeOptions judge_options_from_json(const nlohmann::json& p, Op op) {
  JudgeOptions o;
  o.precision = kernel_precision("bf16p", op);
  if (p.contains("precision")) {
    const json& pr = p.at("precision");
    if (pr.is_string()) {
      o.precision = kernel_precision(pr.get<std::string>(), op);
    } else if (pr.is_object()) {
      if (pr.contains("preset")) {
        if (!pr.at("preset").is_string()) throw InvalidArgument("precision.preset", "must be a string");
        o.precision = kernel_precision(pr.at("preset").get<std::string>(), op);
      }
      for (const auto& [key, v] : pr.items()) {
        if (key == "preset") continue;
        double* field = key == "u_acc"       ? &o.precision.u_acc
                        : key == "u_p"       ? &o.precision.u_p
                        : key == "u_out"     ? &o.precision.u_out
                        : key == "u_exp"     ? &o.precision.u_exp
                        : key == "u_lse_out" ? &o.precision.u_lse_out
                                             : nullptr;
        if (!field)
          throw InvalidArgument("precision", fmt::format("unknown field '{}' (known: preset, u_acc, u_p, u_out, u_exp, u_lse_out)", key));
        *field = unit_from(v, "precision." + key);
      }
    } else {
      throw InvalidArgument("precision", "must be a preset name (bf16p, fp32p, fp8p, fp32p-rn) or an object");
    }
  }
  if (p.contains("claims")) {
    const json& c = p.at("claims");
    if (!c.is_object()) throw InvalidArgument("claims", "must be an object {num_splits, tile_slots}");
    for (const auto& [key, v] : c.items()) {
      if (key == "num_splits") o.claims.num_splits = claim_from(v, "claims.num_splits");
      else if (key == "tile_slots") o.claims.tile_slots = claim_from(v, "claims.tile_slots");
      else throw InvalidArgument("claims", fmt::format("unknown field '{}' (known: num_splits, tile_slots)", key));
    }
  }
  if (p.contains("sentinel") && !p.at("sentinel").is_null()) {
    const json& s = p.at("sentinel");
    if (!s.is_object()) throw InvalidArgument("sentinel", "must be an object {bf16, f32} of bit patterns");
    for (const auto& [key, v] : s.items()) {
      if (key == "bf16") o.sentinel_bf16 = static_cast<std::uint16_t>(bits_from(v, "sentinel.bf16", 0xFFFF));
      else if (key == "f32") o.sentinel_f32 = bits_from(v, "sentinel.f32", 0xFFFFFFFFu);
      else throw InvalidArgument("sentinel", fmt::format("unknown field '{}' (known: bf16, f32)", key));
    }
  }
  if (p.contains("write_contract")) {
    if (!p.at("write_contract").is_string()) throw InvalidArgument("write_contract", "must be all, visible or ceil_page");
    o.write_contract = detail::write_contract_from(p.at("write_contract").get<std::string>(), "write_contract");
  }
  if (p.contains("contract_page_tokens")) {
    const json& v = p.at("contract_page_tokens");
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
      throw InvalidArgument("contract_page_tokens", fmt::format("must be an integer ≥ 0 (got {})", v.dump()));
    o.contract_page_tokens = v.get<std::int64_t>();
  }
  if (p.contains("topk_stable_order")) {
    if (!p.at("topk_stable_order").is_boolean()) throw InvalidArgument("topk_stable_order", "must be true or false");
    o.topk_stable_order = p.at("topk_stable_order").get<bool>();
  }
  return o;
}

CaseFile make_case_file(Op op, const RandomCaseSpec& spec, const std::string& outputs, bool with_gold_tensors) {
  if (outputs != "none" && outputs != "gold" && outputs != "fast")
    throw InvalidArgument("outputs", fmt::format("unknown value '{}' (known: none, gold, fast)", outputs));
  switch (op) {
    case Op::sparse_mla_decode: return detail::make_sparse_mla_decode(spec, outputs, with_gold_tensors);
    case Op::sparse_mla_prefill: return detail::make_sparse_mla_prefill(spec, outputs, with_gold_tensors);
    case Op::paged_mqa_logits: return detail::make_paged_mqa_logits(spec, outputs, with_gold_tensors);
    case Op::mqa_logits: return detail::make_mqa_logits(spec, outputs, with_gold_tensors);
    case Op::topk: return detail::make_topk(spec, outputs, with_gold_tensors);
  }
  throw InvalidArgument("op", "unknown");
}

CaseResult check_case(const CaseFile& inputs, const CaseFile* outputs, const nlohmann::json& overrides) {
  const Op op = case_op(inputs);
  json params = inputs.params();
  if (!overrides.is_object()) throw InvalidArgument("overrides", "must be a JSON object");
  params.merge_patch(overrides);
  const CaseFile& outs = outputs ? *outputs : inputs;
  // The judging options are checked before any data is: a bad option is one clear error.
  (void)judge_options_from_json(params, op);
  CaseResult r;
  switch (op) {
    case Op::sparse_mla_decode: r = detail::check_sparse_mla_decode(inputs, outs, params); break;
    case Op::sparse_mla_prefill: r = detail::check_sparse_mla_prefill(inputs, outs, params); break;
    case Op::paged_mqa_logits: r = detail::check_paged_mqa_logits(inputs, outs, params); break;
    case Op::mqa_logits: r = detail::check_mqa_logits(inputs, outs, params); break;
    case Op::topk: r = detail::check_topk(inputs, outs, params); break;
  }
  // The kernel under test, as the case names it (parameter "kernel"), for the reports.
  const auto kernel = params.find("kernel");
  r.variant = kernel != params.end() && kernel->is_string() ? kernel->get<std::string>() : "case";
  if (const auto prof = params.find("profile"); prof != params.end() && prof->is_string()) r.profile = prof->get<std::string>();
  else if (const auto pr = params.find("precision"); pr != params.end() && pr->is_string()) r.profile = pr->get<std::string>();
  else r.profile = "default";
  if (const auto seed = params.find("seed"); seed != params.end() && seed->is_number_unsigned()) r.seed = seed->get<std::uint64_t>();
  return r;
}

}  // namespace dsa
