// Properties of sparse MLA decode and prefill (SPEC §4, §5, §11): budget against gold with
// sentinels and poison, determinism, relabelling, invalid index values, single-slot rows, sink
// limits, slot permutation, fused ≡ staged, and every split count.
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <numeric>
#include <random>

#include "dsa/error.hpp"
#include "dsa/generators.hpp"
#include "dsa/properties.hpp"
#include "judging.hpp"

namespace dsa::fuzz {

namespace {

using Rng = std::mt19937_64;
constexpr float kInf = std::numeric_limits<float>::infinity();
std::size_t sz(std::int64_t n) { return static_cast<std::size_t>(n); }

// What differs between decode and prefill, for the shared property code.
struct DecodeOps {
  using Case = DecodeCase;
  static constexpr bool kMaxLogits = false;
  static std::vector<MlaSelectionCase*> selections(Case& c) {
    std::vector<MlaSelectionCase*> v = {&c.primary};
    if (c.extra) v.push_back(&*c.extra);
    return v;
  }
  static IndexMode mode(const Case& c) { return c.mode; }
  static std::int64_t rows_per_batch(const Case& c) { return c.S_q; }
  static bool has_twin(const KernelUnderTest& k) { return static_cast<bool>(k.staged_twin_decode); }
  static void run(const KernelUnderTest& k, const Case& c, MlaOutputs& o, const RunContext& ctx, bool twin) {
    if (!k.decode) throw InvalidArgument("kernel", k.name + " has no decode entry point");
    (twin ? k.staged_twin_decode : k.decode)(c.params(), o.view(), ctx);
  }
  static CaseResult judge(const Case& c, const MlaOutputs& o, const JudgeOptions& opt) {
    return judge_attention(c, o, opt);
  }
};

struct PrefillOps {
  using Case = PrefillCase;
  static constexpr bool kMaxLogits = true;
  static std::vector<MlaSelectionCase*> selections(Case& c) { return {&c.kv}; }
  static IndexMode mode(const Case&) { return IndexMode::physical; }
  static std::int64_t rows_per_batch(const Case&) { return 1; }
  static bool has_twin(const KernelUnderTest& k) { return static_cast<bool>(k.staged_twin_prefill); }
  static void run(const KernelUnderTest& k, const Case& c, MlaOutputs& o, const RunContext& ctx, bool twin) {
    if (!k.prefill) throw InvalidArgument("kernel", k.name + " has no prefill entry point");
    (twin ? k.staged_twin_prefill : k.prefill)(c.params(), o.view(), ctx);
  }
  static CaseResult judge(const Case& c, const MlaOutputs& o, const JudgeOptions& opt) {
    return judge_attention(c, o, opt);
  }
};

std::string first_failure(const CaseResult& r) {
  if (!r.error.empty()) return r.error;
  for (const auto& o : r.outputs)
    if (!o.cmp.pass)
      return fmt::format("{}: {} (worst ratio {:.3g} at {}: got {} want {} budget {:.3g}; {} of {} elements fail)",
                         o.name, o.cmp.failure, o.cmp.worst_ratio, o.cmp.worst_coordinate, o.cmp.worst_got,
                         o.cmp.worst_want, o.cmp.worst_budget, o.cmp.failures, o.cmp.elements);
  return "";
}

// One property evaluation over one case, sharing the base run between properties.
template <class Ops>
class Checker {
 public:
  using Case = typename Ops::Case;
  Checker(const KernelUnderTest& k, const Case& c) : k_(k), c_(c), ctx_(run_context(k, c.num_splits)) {}

  Verdict run(const std::string& property) {
    return run_selected(k_, property, v_, [this](const std::string& name) { return one(name); });
  }

 private:
  const KernelUnderTest& k_;
  const Case& c_;
  RunContext ctx_;
  Verdict v_;
  std::optional<MlaOutputs> base_;
  std::string base_error_;

  MlaOutputs fresh(const Case& c) const { return MlaOutputs(c.T(), c.H, Ops::kMaxLogits); }

  // Runs the kernel on `c`; "" or the error it threw.
  std::string call(const Case& c, MlaOutputs& o, const RunContext& ctx, bool twin = false) const {
    try {
      Ops::run(k_, c, o, ctx, twin);
    } catch (const std::exception& e) {
      return fmt::format("{} threw on a valid case: {}", twin ? "the staged twin" : "the kernel", e.what());
    }
    return "";
  }

  const MlaOutputs& base() {
    if (!base_) {
      base_.emplace(fresh(c_));
      base_error_ = call(c_, *base_, ctx_);
    }
    return *base_;
  }

  std::string judged(const Case& c, const MlaOutputs& o, const RunContext& ctx, const char* what) {
    CaseResult r = Ops::judge(c, o, k_.judge_options(ctx));
    r.variant = k_.name;
    r.profile = k_.profile.name;
    r.seed = c.seed;
    const std::string f = first_failure(r);
    v_.judged.push_back(std::move(r));
    return f.empty() ? "" : fmt::format("{}{}", what, f);
  }

  std::string bits_equal(const MlaOutputs& a, const MlaOutputs& b, const char* what) const {
    const std::string d = a.first_difference(b);
    return d.empty() ? "" : fmt::format("{}: {}", what, d);
  }

  std::string one(const std::string& name) {
    const MlaOutputs& b = base();
    if (!base_error_.empty()) return base_error_;
    if (name == "budget") return judged(c_, b, ctx_, "");
    if (name == "determinism") {
      MlaOutputs o = fresh(c_);
      if (auto e = call(c_, o, ctx_); !e.empty()) return e;
      return bits_equal(b, o, "a rerun differs");
    }
    if (name == "relabel") return transformed(relabel(), "after relabelling the physical blocks");
    if (name == "invalid_values") return transformed(invalid_values(), "after changing invalid/ineligible index values");
    if (name == "single_slot") return single_slot();
    if (name == "sink_limits") return sink_limits();
    if (name == "slot_permutation") {
      const Case c = permuted();
      MlaOutputs o = fresh(c);
      if (auto e = call(c, o, ctx_); !e.empty()) return e;
      return judged(c, o, ctx_, "after permuting the eligible slots: ");
    }
    if (name == "insert_invalid") {
      const Case c = inserted();
      MlaOutputs o = fresh(c);
      if (auto e = call(c, o, ctx_); !e.empty()) return e;
      return judged(c, o, ctx_, "after inserting an invalid slot: ");
    }
    if (name == "fused_vs_staged") {
      if (c_.reader.operand != OperandAs::bf16) return "";  // staged rounds operands to bf16: no claim
      MlaOutputs o = fresh(c_);
      if (auto e = call(c_, o, ctx_, true); !e.empty()) return e;
      return bits_equal(b, o, "fused vs staged");
    }
    if (name == "splits") return splits();
    return "";
  }

  std::string transformed(const Case& c, const char* what) {
    MlaOutputs o = fresh(c);
    if (auto e = call(c, o, ctx_); !e.empty()) return e;
    return bits_equal(*base_, o, what);
  }

  Rng rng(std::uint64_t salt) const { return Rng(c_.seed ^ salt); }

  // SPEC §11 E: permute the pool of every cache; rewrite physical indices / logical tables.
  Case relabel() const {
    Case c = c_;
    Rng g = rng(0x5E1AB);
    for (MlaSelectionCase* s : Ops::selections(c)) {
      const auto& geo = s->cache.geo;
      const std::int64_t nb = geo.num_blocks, P = geo.page_tokens;
      if (nb < 2) continue;
      std::vector<std::int64_t> perm(sz(nb));
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), g);
      MlaCacheBuffer moved(geo);
      std::fill(moved.values.begin(), moved.values.end(), std::uint8_t{0xFF});
      std::fill(moved.scales.begin(), moved.scales.end(), std::uint8_t{0xFF});
      for (std::int64_t blk = 0; blk < nb; ++blk) {
        std::copy_n(s->cache.values.begin() + blk * geo.block_stride_bytes, geo.page_bytes(),
                    moved.values.begin() + perm[sz(blk)] * geo.block_stride_bytes);
        if (geo.layout == MlaLayout::MODEL1_SPLIT)
          std::copy_n(s->cache.scales.begin() + blk * geo.scale_block_stride_bytes, geo.scale_page_bytes(),
                      moved.scales.begin() + perm[sz(blk)] * geo.scale_block_stride_bytes);
      }
      s->cache = std::move(moved);
      if (Ops::mode(c) == IndexMode::physical) {
        for (auto& i : s->indices)
          if (i >= 0 && i < nb * P) i = static_cast<std::int32_t>(perm[sz(i / P)] * P + i % P);
      } else {
        for (auto& e : s->block_table)
          if (e >= 0 && e < nb) e = static_cast<std::int32_t>(perm[sz(e)]);
      }
    }
    return c;
  }

  // SPEC §3/§11 E: another invalid value in every eligible invalid slot; anything in ineligible ones.
  Case invalid_values() const {
    Case c = c_;
    Rng g = rng(0x1A7A11D);
    const bool only_minus_one = k_.profile.invalid_indices == InvalidIndices::only_minus_one;
    const std::int64_t rows = c.T();
    for (MlaSelectionCase* s : Ops::selections(c)) {
      const auto& geo = s->cache.geo;
      const std::int64_t range =
          Ops::mode(c) == IndexMode::physical ? geo.num_blocks * geo.page_tokens : s->max_blocks * geo.page_tokens;
      const std::vector<std::int32_t> edges = invalid_index_edges(range);
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int32_t elig = eligible(*s, r, Ops::rows_per_batch(c));
        for (std::int32_t j = 0; j < s->topk; ++j) {
          std::int32_t& idx = s->indices[sz(r * s->topk + j)];
          if (j >= elig) {
            const bool valid_value = range > 0 && (g() & 1);
            idx = valid_value ? static_cast<std::int32_t>(g() % static_cast<std::uint64_t>(range))
                              : (only_minus_one ? -1 : edges[g() % edges.size()]);
          } else if (!resolve(*s, Ops::mode(c), r, Ops::rows_per_batch(c), j).valid() && !only_minus_one) {
            // An in-range position behind an invalid table entry is invalid too; an out-of-range
            // value keeps it invalid whatever the table says.
            idx = edges[g() % edges.size()];
          }
        }
      }
    }
    return c;
  }

  Case permuted() const {
    Case c = c_;
    Rng g = rng(0x9E3779B9);
    for (MlaSelectionCase* s : Ops::selections(c))
      for (std::int64_t r = 0; r < c.T(); ++r) {
        const std::int32_t elig = eligible(*s, r, Ops::rows_per_batch(c));
        auto begin = s->indices.begin() + r * s->topk;
        std::shuffle(begin, begin + elig, g);
      }
    return c;
  }

  // SPEC §11: one more slot per row, holding −1, at a position of each sequence's eligible prefix
  // (the same for every row of a sequence, since lengths are per sequence); lengths grow by one.
  Case inserted() const {
    Case c = c_;
    Rng g = rng(0x1A5E27);
    MlaSelectionCase& s = *Ops::selections(c)[0];
    const std::int64_t rpb = Ops::rows_per_batch(c), batches = c.T() / std::max<std::int64_t>(rpb, 1);
    const std::int32_t topk = s.topk;
    std::vector<std::int32_t> idx(sz(c.T() * (topk + 1)));
    for (std::int64_t b = 0; b < batches; ++b) {
      const std::int32_t elig = eligible(s, b * rpb, rpb);
      const auto at = static_cast<std::int32_t>(g() % static_cast<std::uint64_t>(elig + 1));
      for (std::int64_t r = b * rpb; r < (b + 1) * rpb; ++r)
        for (std::int32_t j = 0, src = 0; j <= topk; ++j)
          idx[sz(r * (topk + 1) + j)] = j == at ? -1 : s.indices[sz(r * topk + src++)];
      if (!s.lengths.empty()) {
        std::int32_t& len = s.lengths[sz(b)];
        if (len >= 0 && len < INT_MAX) ++len;
      }
    }
    s.indices = std::move(idx);
    s.topk = topk + 1;
    return c;
  }

  // SPEC §11 E: keep only the first valid slot of every row (no sink): out = that value row.
  std::string single_slot() {
    Case c = c_;
    c.sink.clear();
    auto sels = Ops::selections(c);
    std::vector<std::pair<int, TokenRef>> keep(sz(c.T()), {-1, TokenRef{}});
    for (std::int64_t r = 0; r < c.T(); ++r) {
      bool found = false;
      for (std::size_t si = 0; si < sels.size(); ++si) {
        MlaSelectionCase& s = *sels[si];
        const std::int32_t elig = eligible(s, r, Ops::rows_per_batch(c));
        for (std::int32_t j = 0; j < elig; ++j) {
          const TokenRef ref = resolve(s, Ops::mode(c), r, Ops::rows_per_batch(c), j);
          if (ref.valid() && !found) {
            found = true;
            keep[sz(r)] = {static_cast<int>(si), ref};
            continue;
          }
          s.indices[sz(r * s.topk + j)] = -1;
        }
      }
    }
    MlaOutputs o = fresh(c);
    if (auto e = call(c, o, ctx_); !e.empty()) return e;
    const int D = sels[0]->cache.geo.dim_qk(), Dv = 512;
    std::vector<float> v(sz(D));
    for (std::int64_t r = 0; r < c.T(); ++r) {
      const auto& [si, ref] = keep[sz(r)];
      if (si < 0) continue;
      read_mla_token(sels[sz(si)]->cache.view(), ref.block, ref.t, c.reader, v.data());
      for (std::int32_t h = 0; h < c.H; ++h)
        for (int d = 0; d < Dv; ++d) {
          const std::uint16_t got = o.out[sz((r * c.H + h) * Dv + d)], want = f32_to_bf16(v[sz(d)]);
          // Compared as values: +0 and −0 are the same value row (0 + (−0) = +0 in any accumulator).
          const float g = bf16_to_f32(got), w = bf16_to_f32(want);
          if (!(g == w) && !(std::isnan(g) && std::isnan(w)))
            return fmt::format("row {} has one valid slot (block {}, token {}) but out[{}][{}][{}] = {:#06x} ({}) "
                               "is not its value {:#06x} ({})",
                               r, ref.block, ref.t, r, h, d, got, bf16_to_f32(got), want, bf16_to_f32(want));
        }
    }
    return judged(c, o, ctx_, "single-slot rows: ");
  }

  std::string sink_limits() {
    Case none = c_, neg = c_, pos = c_;
    none.sink.clear();
    neg.sink.assign(sz(c_.H), -kInf);
    pos.sink.assign(sz(c_.H), kInf);
    MlaOutputs a = c_.sink.empty() ? *base_ : fresh(none), b = fresh(neg), p = fresh(pos);
    if (!c_.sink.empty())
      if (auto e = call(none, a, ctx_); !e.empty()) return e;
    if (auto e = call(neg, b, ctx_); !e.empty()) return e;
    if (auto e = call(pos, p, ctx_); !e.empty()) return e;
    if (auto d = bits_equal(a, b, "sink −inf vs no sink"); !d.empty()) return d;
    for (std::size_t i = 0; i < p.out.size(); ++i)
      if ((p.out[i] & 0x7FFF) != 0)
        return fmt::format("sink +inf: out[{}] = {:#06x} ({}), must be 0", i, p.out[i], bf16_to_f32(p.out[i]));
    return "";
  }

  // One more split count per case besides the case's own (which "budget" judged): unsplit, one
  // chunk per slot and then some (empty chunks), or half the slots — chosen by the seed.
  std::string splits() {
    const std::int64_t most = std::min<std::int64_t>(c_.slots() + 1, kMaxSplits);
    const int candidates[] = {1, static_cast<int>(std::max<std::int64_t>(most, 2)),
                              static_cast<int>(std::max<std::int64_t>(2, most / 2))};
    const int n0 = candidates[c_.seed % 3];
    for (int n : {n0, n0 == 1 ? 2 : 1}) {
      if (n == c_.num_splits) continue;
      const RunContext ctx = run_context(k_, n);
      MlaOutputs o = fresh(c_);
      if (auto e = call(c_, o, ctx); !e.empty()) return e;
      return judged(c_, o, ctx, fmt::format("num_splits = {}: ", n).c_str());
    }
    return "";
  }
};

}  // namespace

Verdict check(const KernelUnderTest& k, const DecodeCase& c, const std::string& property) {
  return Checker<DecodeOps>(k, c).run(property);
}

Verdict check(const KernelUnderTest& k, const PrefillCase& c, const std::string& property) {
  return Checker<PrefillOps>(k, c).run(property);
}

}  // namespace dsa::fuzz
