// What every per-op judge shares: op names, the named precision promises, and one output's
// comparison with its ratio histogram.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "dsa/error.hpp"
#include "dsa/judge.hpp"

namespace dsa {

const char* to_string(Op op) {
  switch (op) {
    case Op::sparse_mla_decode: return "sparse_mla_decode";
    case Op::sparse_mla_prefill: return "sparse_mla_prefill";
    case Op::paged_mqa_logits: return "paged_mqa_logits";
    case Op::mqa_logits: return "mqa_logits";
    case Op::topk: return "topk";
  }
  return "?";
}

std::optional<Op> op_from_string(std::string_view s) {
  for (Op op : kAllOps)
    if (s == to_string(op)) return op;
  return std::nullopt;
}

KernelPrecision kernel_precision(std::string_view preset, Op op) {
  KernelPrecision k;  // bf16p
  if (preset == "bf16p") {
  } else if (preset == "fp32p") {
    k.u_p = 0.0;
  } else if (preset == "fp8p") {
    k.u_p = kUnitFp8E4M3;
  } else if (preset == "fp32p-rn") {
    k.u_p = 0.0;
    k.u_acc = kUnitFp32;
  } else {
    throw InvalidArgument("precision", fmt::format("unknown preset '{}' (known: bf16p, fp32p, fp8p, fp32p-rn)", preset));
  }
  // Indexer logits are fp32 outputs and have no P.
  if (op == Op::paged_mqa_logits || op == Op::mqa_logits) {
    k.u_out = kUnitFp32;
    k.u_p = 0.0;
  }
  return k;
}

CaseResult::Output judge_output(std::string name, std::span<const double> got, std::span<const double> want,
                                std::span<const double> budget, const TensorShape& shape,
                                std::span<const std::uint8_t> unwritten, std::span<const std::uint8_t> skip,
                                RatioHistogram& hist) {
  CompareOptions opt;
  opt.unwritten_mask = unwritten;
  opt.skip_mask = skip;
  CaseResult::Output o{std::move(name), compare(got, want, budget, shape, opt)};
  // The same element rules as compare(), one ratio per compared element.
  constexpr double kFail = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!skip.empty() && skip[i]) continue;
    if (!unwritten.empty() && unwritten[i]) {
      hist.add(kFail);
      continue;
    }
    const double g = got[i], w = want[i];
    if (!std::isfinite(g) || !std::isfinite(w)) {
      const bool same = (std::isnan(g) && std::isnan(w)) || (!std::isnan(g) && !std::isnan(w) && g == w);
      hist.add(same ? 0.0 : kFail);
      continue;
    }
    const double err = std::fabs(g - w);
    hist.add(err == 0.0 ? 0.0 : budget[i] > 0.0 ? err / budget[i] : kFail);
  }
  return o;
}

}  // namespace dsa
