// RapidCheck generators of fuzz specs. Every list below is ordered simplest first, because
// RapidCheck shrinks a choice towards the front of its list.
#include "dsa/generators.hpp"

#include <algorithm>
#include <climits>
#include <limits>
#include <utility>

#include "dsa/error.hpp"

namespace dsa::fuzz {

namespace {

namespace gen = rc::gen;
constexpr int kFullSize = 100;

// A weighted choice from a runtime list; shrinks towards the first entry.
template <class T>
rc::Gen<T> weighted(std::vector<std::pair<int, T>> items) {
  int total = 0;
  for (const auto& it : items) total += it.first;
  return gen::map(gen::inRange(0, total), [items](int x) {
    for (const auto& [w, v] : items) {
      if (x < w) return v;
      x -= w;
    }
    return items.back().second;
  });
}

template <class T>
T pick(const std::vector<T>& v, const char* what) {
  if (v.empty()) throw InvalidArgument("profile", std::string("allows no ") + what);
  return *gen::elementOf(v);
}

// The whole seed range at every RapidCheck size.
std::uint64_t seed() {
  return *gen::noShrink(gen::resize(kFullSize, gen::inRange<std::uint64_t>(0, std::numeric_limits<std::uint64_t>::max())));
}

// RapidCheck scales inRange by the size (0 … 100 over a run), which would make the first cases
// of every run the all-minimal ones. The spec generators fix the size at its nominal maximum: the
// lists' weights already favour small shapes, and shrinking does not depend on the size.
template <class T>
rc::Gen<T> sized(rc::Gen<T> g) {
  return gen::resize(kFullSize, std::move(g));
}

ValueStyle value_style() {
  return *weighted<ValueStyle>({{3, ValueStyle::normal}, {1, ValueStyle::offset}, {2, ValueStyle::extremes}});
}

std::int32_t topk_for(const Profile& prof, int tile, bool extra) {
  if (prof.topk_multiple > 1) return prof.topk_multiple * *gen::inRange(1, 3);
  if (extra) return *weighted<std::int32_t>({{3, 1}, {3, 5}, {2, 16}, {1, 0}, {1, tile + 1}});
  return *weighted<std::int32_t>(
      {{2, 1}, {2, 2}, {3, 7}, {3, 24}, {1, 0}, {2, tile - 1}, {2, tile}, {3, tile + 1}, {1, 2 * tile + 3}});
}

// One sparse MLA selection of `rows` query rows (B sequences; lengths per sequence, or per row
// in prefill where rows == B).
MlaSelectionSpec selection(const Profile& prof, MlaLayout layout, int dim_qk, std::int64_t B, std::int64_t rows,
                           IndexMode mode, int tile, bool extra) {
  MlaSelectionSpec s;
  s.layout = layout;
  s.bf16_dim_qk = dim_qk;
  s.fp8 = pick(prof.fp8_formats, "fp8 format");
  s.scale_policy = layout == MlaLayout::V32 ? pick(prof.v32_scale_policies, "V32 scale policy") : ScalePolicy::pow2_ceil;
  s.page_tokens = *gen_page_tokens(false);
  s.num_blocks = *weighted<std::int64_t>({{3, 1}, {3, 2}, {2, 3}, {1, 5}, {1, 0}});
  s.stride_pad = *weighted<std::int64_t>({{4, 0}, {1, 8}, {1, 584}, {1, 4096}});
  s.topk = topk_for(prof, tile, extra);
  if (mode == IndexMode::logical) {
    s.max_blocks = *weighted<std::int64_t>({{2, 1}, {3, 2}, {2, 4}, {1, 0}});
    s.table = *weighted<TableStyle>({{3, TableStyle::permutation}, {2, TableStyle::aliasing}, {2, TableStyle::with_invalid}});
  }
  const std::int64_t range = mode == IndexMode::physical ? s.num_blocks * s.page_tokens : s.max_blocks * s.page_tokens;
  s.codes = *gen::container<std::vector<std::int32_t>>(static_cast<std::size_t>(rows * s.topk), gen_index_value(range));
  s.patterns = *gen::container<std::vector<RowPattern>>(
      static_cast<std::size_t>(rows),
      weighted<RowPattern>({{5, RowPattern::as_drawn}, {1, RowPattern::unique}, {2, RowPattern::leading_invalid},
                            {1, RowPattern::trailing_padding}, {1, RowPattern::all_invalid},
                            {1, RowPattern::single_valid}}));
  s.pattern_at = *gen::container<std::vector<std::int32_t>>(
      static_cast<std::size_t>(rows),
      gen::element<std::int32_t>(0, 1, tile - 1, tile, tile + 1, s.topk / 2, s.topk));
  if (prof.topk_length && *weighted<bool>({{3, false}, {2, true}}))
    s.lengths = *gen::container<std::vector<std::int32_t>>(static_cast<std::size_t>(B),
                                                           gen_length(s.topk, tile, prof.lengths_out_of_range));
  return s;
}

SinkKind sink_kind(const Profile& prof) {
  std::vector<std::pair<int, SinkKind>> kinds = {{3, SinkKind::none}};
  if (prof.sinks) kinds.push_back({2, SinkKind::finite});
  if (prof.infinite_sinks) kinds.push_back({1, SinkKind::infinite_mix});
  return *weighted(kinds);
}

float sm_scale(const Profile& prof) {
  if (!prof.custom_sm_scale) return 0.0f;
  return *weighted<float>({{4, 0.0f}, {1, 0.5f}, {1, 0.0625f}, {1, 0.01f}});
}

// Split counts: mostly small; up to past the slot count (empty chunks) for small selections.
// Capped at kMaxSplits because the CPU fast path sizes its split partials by the head group, not
// by H (256 KiB per row and split), so large counts cost memory traffic, not coverage.
int num_splits(const KernelUnderTest& k, std::int64_t slots) {
  if (!k.takes_num_splits) return 1;
  const int most = static_cast<int>(std::min<std::int64_t>(slots + 2, kMaxSplits));
  return *gen::weightedOneOf<int>({{2, gen::element(1, 2, 3)}, {1, gen::inRange(1, most + 1)}});
}

std::vector<MlaLayout> same_dim(const std::vector<MlaLayout>& layouts, int dim_qk) {
  std::vector<MlaLayout> out;
  for (MlaLayout l : layouts)
    if (l == MlaLayout::BF16 || mla_dim_qk(l) == dim_qk) out.push_back(l);
  return out;
}

}  // namespace

int tile_of(const KernelUnderTest& k) { return k.claims.tile_slots > 0 ? k.claims.tile_slots : kMlaTileSlots; }

rc::Gen<std::int32_t> gen_page_tokens(bool multiple_of_16) {
  if (multiple_of_16) return weighted<std::int32_t>({{3, 16}, {3, 64}, {1, 32}, {1, 256}});
  return weighted<std::int32_t>({{2, 1}, {2, 2}, {3, 16}, {2, 53}, {1, 61}, {3, 64}, {1, 69}, {1, 256}});
}

rc::Gen<std::int32_t> gen_index_value(std::int64_t range) {
  const std::vector<std::int32_t> edges = invalid_index_edges(range);
  if (range <= 0) return gen::elementOf(edges);
  return gen::weightedOneOf<std::int32_t>(
      {{7, gen::inRange<std::int32_t>(0, static_cast<std::int32_t>(std::min<std::int64_t>(range, INT_MAX)))},
       {2, gen::elementOf(edges)}});
}

rc::Gen<std::int32_t> gen_length(std::int32_t topk, int tile, bool out_of_range) {
  std::vector<std::pair<int, std::int32_t>> v = {{3, topk}, {2, 0}, {2, 1}, {1, tile - 1}, {1, tile}, {1, tile + 1},
                                                  {1, std::max(topk - 1, 0)}, {1, topk / 2}};
  std::vector<std::pair<int, std::int32_t>> in;
  for (const auto& e : v)
    if (e.second >= 0 && e.second <= topk) in.push_back(e);
  if (out_of_range) {
    in.push_back({1, -1});
    in.push_back({1, topk + 1});
    in.push_back({1, INT_MAX});
  }
  return weighted(in);
}

rc::Gen<DecodeSpec> gen_decode_spec(const KernelUnderTest& k) {
  return sized(gen::exec([k] {
    const Profile& prof = k.profile;
    const int tile = tile_of(k);
    DecodeSpec s;
    const MlaLayout layout = pick(prof.mla_layouts, "MLA layout");
    const int dim = layout == MlaLayout::V32 ? 576 : layout == MlaLayout::BF16 ? *gen::element(576, 512) : 512;
    s.B = *gen::inRange<std::int64_t>(1, prof.max_batch + 1);
    s.S_q = *weighted<std::int64_t>({{4, 1}, {2, 2}, {1, prof.max_s_q}});
    s.S_q = std::min(s.S_q, prof.max_s_q);
    s.H = prof.heads.empty() ? *weighted<std::int32_t>({{3, 1}, {2, 2}, {1, 3}, {2, 8}, {1, 16}})
                             : pick(prof.heads, "head count");
    s.mode = pick(prof.index_modes, "index mode");
    s.invalid = prof.invalid_indices;
    s.primary = selection(prof, layout, dim, s.B, s.B * s.S_q, s.mode, tile, false);
    if (prof.extra_cache && *weighted<bool>({{3, false}, {2, true}})) {
      const MlaLayout el = pick(same_dim(prof.mla_layouts, dim), "extra-cache layout");
      s.extra = selection(prof, el, dim, s.B, s.B * s.S_q, s.mode, tile, true);
      if (s.extra->topk == 0) s.extra.reset();  // extra_topk = 0 means no extra cache
    }
    s.sink = sink_kind(prof);
    s.sm_scale = sm_scale(prof);
    s.reader = pick(k.mla_readers, "reader model");
    s.conventions = pick(prof.conventions, "convention set");
    s.num_splits = num_splits(k, s.primary.topk + (s.extra ? s.extra->topk : 0));
    s.values = value_style();
    s.seed = seed();
    return s;
  }));
}

rc::Gen<PrefillSpec> gen_prefill_spec(const KernelUnderTest& k) {
  return sized(gen::exec([k] {
    const Profile& prof = k.profile;
    const int tile = tile_of(k);
    PrefillSpec s;
    const MlaLayout layout = pick(prof.mla_layouts, "MLA layout");
    const int dim = layout == MlaLayout::V32 ? 576 : layout == MlaLayout::BF16 ? *gen::element(576, 512) : 512;
    s.S_q = *weighted<std::int64_t>({{3, 1}, {3, 2}, {2, 4}, {1, 0}});
    s.H = prof.heads.empty() ? *weighted<std::int32_t>({{3, 1}, {2, 2}, {1, 3}, {2, 8}, {1, 16}})
                             : pick(prof.heads, "head count");
    s.invalid = prof.invalid_indices;
    s.kv = selection(prof, layout, dim, s.S_q, s.S_q, IndexMode::physical, tile, false);
    s.sink = sink_kind(prof);
    s.sm_scale = sm_scale(prof);
    s.reader = pick(k.mla_readers, "reader model");
    s.conventions = pick(prof.conventions, "convention set");
    s.num_splits = num_splits(k, s.kv.topk);
    s.values = value_style();
    s.seed = seed();
    return s;
  }));
}

rc::Gen<PagedLogitsSpec> gen_paged_logits_spec(const KernelUnderTest& k) {
  return sized(gen::exec([k] {
    const Profile& prof = k.profile;
    PagedLogitsSpec s;
    s.layout = pick(prof.index_k_layouts, "index-K layout");
    const bool pre = s.layout == IndexKLayout::preshuffle;
    s.B = *gen::inRange<std::int64_t>(1, std::min<std::int64_t>(prof.max_batch, 3) + 1);
    s.N = *weighted<std::int64_t>({{4, 1}, {2, 2}, {1, 4}});
    s.H = *weighted<std::int64_t>({{3, 1}, {3, 4}, {1, 3}, {1, 16}});
    s.D = prof.index_head_dims.empty() ? *weighted<std::int64_t>({{3, 16}, {3, 32}, {1, 64}, {1, 128}})
                                       : pick(prof.index_head_dims, "index head dim");
    if (pre && s.D % 16 != 0) s.D = 16 * (s.D / 16 + 1);
    if (!prof.index_page_tokens.empty()) {
      std::vector<std::int32_t> ok;
      for (auto P : prof.index_page_tokens)
        if (!pre || P % 16 == 0) ok.push_back(P);
      s.page_tokens = pick(ok, "page size for this layout");
    } else {
      s.page_tokens = *gen_page_tokens(pre);
    }
    s.fp8 = pick(prof.fp8_formats, "fp8 format");
    s.kind = pick(prof.context_lens_kinds, "context-lens kind");
    s.k_scale_at = pick(k.k_scale_at, "K-scale reader model");
    const std::int32_t P = s.page_tokens;
    const auto ctx = weighted<std::int32_t>({{2, 1}, {3, 5}, {1, 0}, {1, P - 1}, {1, P}, {1, P + 1}, {2, 2 * P + 3},
                                             {1, std::min(3 * P, 300)}});
    const std::size_t n = static_cast<std::size_t>(s.kind == ContextLens::per_sequence ? s.B : s.B * s.N);
    s.context_lens = *gen::container<std::vector<std::int32_t>>(n, ctx);
    s.max_ctx_slack = *weighted<std::int64_t>({{4, 0}, {1, 1}, {1, 7}, {1, P}});
    s.stride_slack = *weighted<std::int64_t>({{4, 0}, {1, 3}, {1, 256}});
    s.block_pad_words = *weighted<std::int64_t>({{4, 0}, {1, 1}, {1, 16}});
    s.spare_blocks = *gen::inRange<std::int64_t>(0, 3);
    s.table = *weighted<TableStyle>({{3, TableStyle::permutation}, {1, TableStyle::aliasing}});
    s.ue8m0_scales = *weighted<bool>({{3, false}, {1, true}});
    s.values = value_style();
    s.seed = seed();
    return s;
  }));
}

rc::Gen<MqaLogitsSpec> gen_mqa_logits_spec(const KernelUnderTest& k) {
  return sized(gen::exec([k] {
    const Profile& prof = k.profile;
    MqaLogitsSpec s;
    s.S = *weighted<std::int64_t>({{3, 1}, {3, 3}, {1, 8}});
    s.S_kv = *weighted<std::int64_t>({{2, 1}, {3, 17}, {1, 0}, {2, 64}, {1, 129}});
    s.H = *weighted<std::int64_t>({{3, 1}, {3, 4}, {1, 16}});
    s.D = prof.index_head_dims.empty() ? *weighted<std::int64_t>({{3, 16}, {3, 32}, {1, 128}})
                                       : pick(prof.index_head_dims, "index head dim");
    s.fp8 = pick(prof.fp8_formats, "fp8 format");
    s.k_scale_at = pick(k.k_scale_at, "K-scale reader model");
    for (std::int64_t i = 0; i < s.S; ++i) {
      const auto ks = *gen::inRange<std::int32_t>(0, static_cast<std::int32_t>(s.S_kv) + 1);
      const auto ke = *gen::inRange<std::int32_t>(ks, static_cast<std::int32_t>(s.S_kv) + 1);
      s.ks.push_back(ks);
      s.ke.push_back(ke);
    }
    s.stride_slack = *weighted<std::int64_t>({{4, 0}, {1, 3}, {1, 256}});
    s.ue8m0_scales = *weighted<bool>({{3, false}, {1, true}});
    s.values = value_style();
    s.seed = seed();
    return s;
  }));
}

rc::Gen<TopkSpec> gen_topk_spec(const KernelUnderTest&) {
  return sized(gen::exec([] {
    TopkSpec s;
    s.rows = *weighted<std::int64_t>({{3, 1}, {3, 3}, {1, 8}});
    s.width = *weighted<std::int64_t>({{2, 1}, {3, 10}, {3, 100}, {1, 700}});
    s.stride_slack = *weighted<std::int64_t>({{4, 0}, {1, 5}});
    s.k = *weighted<std::int64_t>({{3, 1}, {3, 4}, {2, 16}, {1, 64}, {1, 2048}});
    for (std::int64_t i = 0; i < s.rows; ++i) {
      const auto b = *weighted<std::int64_t>({{3, 0}, {1, *gen::inRange<std::int64_t>(0, s.width + 1)}});
      const auto e = *weighted<std::int64_t>({{3, s.width}, {2, *gen::inRange<std::int64_t>(b, s.width + 1)}, {1, b}});
      s.begin.push_back(b);
      s.end.push_back(std::max(b, e));
    }
    s.style = *weighted<LogitStyle>({{2, LogitStyle::distinct}, {2, LogitStyle::ties}, {2, LogitStyle::specials}});
    s.seed = seed();
    return s;
  }));
}

}  // namespace dsa::fuzz
