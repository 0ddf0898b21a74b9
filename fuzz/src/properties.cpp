// The property registry, the dispatch over cases of every op, and the RapidCheck glue.
#include "dsa/properties.hpp"

#include <fmt/format.h>

#include <chrono>

#include "dsa/error.hpp"
#include "dsa/generators.hpp"

namespace dsa::fuzz {

namespace {

const std::vector<PropertyInfo> kAttention = {
    {"budget", 'W', "outputs within the per-element budget of gold; sentinel-filled outputs all written; "
                    "NaN-poisoned unreferenced cache rows never leak (SPEC §4/§5, §10)"},
    {"determinism", 'E', "rerunning the same call gives the same bits (SPEC §11)"},
    {"relabel", 'E', "relabelling physical blocks (pool permuted, tables/indices rewritten) changes no bit (SPEC §11)"},
    {"invalid_values", 'E', "other invalid index values, and any values beyond topk_length, change no bit (SPEC §3, §11)"},
    {"single_slot", 'E', "a row with one valid slot returns that slot's value row exactly; lse within budget (SPEC §11)"},
    {"sink_limits", 'E', "sink −inf ≡ no sink bit for bit; sink +inf ⇒ out = 0 (SPEC §4, §11)"},
    {"slot_permutation", 'W', "permuting the eligible slots of every row stays within budget (SPEC §11)"},
    {"insert_invalid", 'W', "inserting an invalid slot (−1) into every row, lengths shifted, stays within budget (SPEC §11)"},
    {"fused_vs_staged", 'E', "fused and staged give identical bits under a reader with bf16 operands (SPEC §4)"},
    {"splits", 'W', "every split count (1, empty chunks, half the slots) within budget (SPEC §4 combine)"},
};

const std::vector<PropertyInfo> kPaged = {
    {"budget", 'W', "logits within budget of gold under the kernel's write contract; sentinel-filled output; "
                    "nothing written past max_ctx; poisoned unused pages never leak (SPEC §6.2, §10)"},
    {"determinism", 'E', "rerunning the same call gives the same bits (SPEC §11)"},
    {"relabel", 'E', "relabelling physical blocks changes no bit (layout-independent kernels, SPEC §11)"},
    {"layout_pair", 'E', "the same cache in standard and preshuffle layout gives the same bits (SPEC §11)"},
    {"scale_doubling", 'E', "doubling every power-of-two-exact K scale doubles every finite logit (SPEC §11)"},
    {"layout_mismatch", 'E', "a cache whose layout tag differs from the reader's is rejected, nothing written (SPEC §6.1, §8)"},
};

const std::vector<PropertyInfo> kMqa = {
    {"budget", 'W', "logits within budget of gold; sentinel-filled output; nothing written past S_kv (SPEC §6.3)"},
    {"determinism", 'E', "rerunning the same call gives the same bits (SPEC §11)"},
    {"scale_doubling", 'E', "doubling every K scale doubles every finite logit (SPEC §11)"},
};

const std::vector<PropertyInfo> kTopk = {
    {"predicate", 'E', "the SPEC §6.4 acceptance predicate (check_topk) holds for every row"},
    {"determinism", 'E', "rerunning the same call gives the same bits (SPEC §11)"},
};

thread_local std::optional<FailedCase> g_last_failure;
thread_local RcObserver* g_observer = nullptr;

}  // namespace

const std::vector<PropertyInfo>& properties(Op op) {
  switch (op) {
    case Op::sparse_mla_decode:
    case Op::sparse_mla_prefill: return kAttention;
    case Op::paged_mqa_logits: return kPaged;
    case Op::mqa_logits: return kMqa;
    case Op::topk: return kTopk;
  }
  return kTopk;
}

bool applies(const KernelUnderTest& k, const std::string& property) {
  bool known = false;
  for (const auto& p : properties(k.op)) known |= p.name == property;
  if (!known) return false;
  if (property == "determinism") return k.deterministic;
  if (property == "relabel") return k.op == Op::paged_mqa_logits ? k.layout_independent : k.relabel_exact;
  if (property == "fused_vs_staged")
    return k.op == Op::sparse_mla_decode ? static_cast<bool>(k.staged_twin_decode)
                                         : static_cast<bool>(k.staged_twin_prefill);
  if (property == "splits") return k.takes_num_splits;
  if (property == "insert_invalid") return k.profile.topk_multiple == 1;  // topk grows by one
  if (property == "sink_limits") return k.profile.sinks && k.profile.infinite_sinks;
  if (property == "layout_pair")
    return k.layout_independent && k.profile.index_k_layouts.size() >= 2;
  return true;
}

Verdict run_selected(const KernelUnderTest& k, const std::string& list, Verdict& v,
                     const std::function<std::string(const std::string&)>& one) {
  for (const auto& info : properties(k.op)) {
    if (!selected(list, info.name) || !applies(k, info.name)) continue;
    v.property = info.name;
    std::string failure = one(info.name);
    if (!failure.empty()) {
      v.pass = false;
      v.message = std::move(failure);
      break;
    }
  }
  return v;
}

bool selected(const std::string& list, const std::string& name) {
  if (list.empty()) return true;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t end = std::min(list.find(',', start), list.size());
    if (list.compare(start, end - start, name) == 0) return true;
    start = end + 1;
  }
  return false;
}

Op op_of(const AnyCase& c) {
  switch (c.index()) {
    case 0: return Op::sparse_mla_decode;
    case 1: return Op::sparse_mla_prefill;
    case 2: return Op::paged_mqa_logits;
    case 3: return Op::mqa_logits;
    default: return Op::topk;
  }
}

std::string describe(const AnyCase& c) {
  return std::visit([](const auto& x) { return x.describe(); }, c);
}

Verdict check(const KernelUnderTest& k, const AnyCase& c, const std::string& property) {
  if (op_of(c) != k.op)
    throw InvalidArgument("kernel", fmt::format("{} implements {}, but the case is {}", k.name, to_string(k.op),
                                                to_string(op_of(c))));
  return std::visit([&](const auto& x) { return check(k, x, property); }, c);
}

namespace {

template <class Spec>
void rc_body(const KernelUnderTest& k, const std::string& property, const rc::Gen<Spec>& gen) {
  const Spec spec = *gen;
  const auto t0 = std::chrono::steady_clock::now();
  AnyCase c = build(spec);
  Verdict v;
  try {
    v = std::visit([&](const auto& x) { return check(k, x, property); }, c);
  } catch (const std::exception& e) {
    v.pass = false;
    v.property = property.empty() ? "budget" : property;
    v.message = fmt::format("threw: {}", e.what());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (g_observer && g_observer->on_case) g_observer->on_case(k, c, v, seconds);
  if (!v.pass) {
    std::string text = fmt::format("{} [{}] {}: {}\n  case: {}", k.name, k.profile.name, v.property, v.message,
                                   describe(c));
    g_last_failure = FailedCase{std::move(c), v};
    RC_FAIL(text);
  }
}

}  // namespace

void rc_check(const KernelUnderTest& k, const std::string& property) {
  switch (k.op) {
    case Op::sparse_mla_decode: rc_body(k, property, gen_decode_spec(k)); break;
    case Op::sparse_mla_prefill: rc_body(k, property, gen_prefill_spec(k)); break;
    case Op::paged_mqa_logits: rc_body(k, property, gen_paged_logits_spec(k)); break;
    case Op::mqa_logits: rc_body(k, property, gen_mqa_logits_spec(k)); break;
    case Op::topk: rc_body(k, property, gen_topk_spec(k)); break;
  }
}

std::optional<FailedCase> take_last_failure() {
  auto f = std::move(g_last_failure);
  g_last_failure.reset();
  return f;
}

void set_rc_observer(RcObserver* observer) { g_observer = observer; }

}  // namespace dsa::fuzz
