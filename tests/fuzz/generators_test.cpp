// The generators draw what issue 6.2 asks for, inside each kernel's profile: over a fixed sample of
// specs every required edge appears (page sizes, table styles, index edge values, masked leading
// tiles, empty rows, lengths at the tile edges, extra caches, ±inf sinks, fnuz, fp32 scales, …),
// FlashMLA's preconditions hold for every case of its profile, and a failing property shrinks to
// a case of a few rows.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <climits>
#include <set>

#include "dsa/campaign.hpp"
#include "dsa/generators.hpp"
#include "dsa/mutants.hpp"
#include "dsa/properties.hpp"
#include "rapidcheck/detail/Property.h"
#include "rapidcheck/detail/TestListener.h"

using namespace dsa;
using namespace dsa::fuzz;

namespace {

template <class Spec>
std::vector<Spec> sample(const rc::Gen<Spec>& g, int n) {
  std::vector<Spec> v;
  for (int i = 0; i < n; ++i) v.push_back(g(rc::Random(static_cast<std::uint64_t>(i) * 7919 + 1), 100).value());
  return v;
}

}  // namespace

TEST(FuzzGenerators, DecodeSpecsCoverTheRequiredEdges) {
  const auto k = kernel_by_name("sparse_mla_decode/fast.fused");
  const int tile = tile_of(k);
  std::set<std::int32_t> pages, index_values;
  std::set<std::string> seen;
  for (const auto& s : sample(gen_decode_spec(k), 400)) {
    const DecodeCase c = build(s);
    pages.insert(s.primary.page_tokens);
    for (auto i : c.primary.indices) index_values.insert(i);
    seen.insert(std::string("layout ") + to_string(s.primary.layout));
    seen.insert(std::string("fp8 ") + to_string(s.primary.fp8));
    seen.insert(std::string("table ") + to_string(s.primary.table));
    seen.insert(std::string("sink ") + to_string(s.sink));
    seen.insert(std::string("values ") + to_string(s.values));
    if (s.extra) seen.insert(s.extra->num_blocks == 0 ? "extra empty" : "extra full");
    if (s.extra && s.extra->page_tokens != s.primary.page_tokens) seen.insert("extra own page size");
    if (s.primary.layout == MlaLayout::V32 && s.primary.scale_policy == ScalePolicy::fp32) seen.insert("fp32 scales");
    if (s.primary.stride_pad > 0) seen.insert("padded block stride");
    if (s.primary.topk > s.primary.num_blocks * s.primary.page_tokens) seen.insert("topk > capacity");
    if (s.primary.topk % 64 != 0) seen.insert("topk not a multiple of 64");
    for (auto l : s.primary.lengths) {
      if (l == 0) seen.insert("length 0");
      if (l == tile - 1 || l == tile || l == tile + 1) seen.insert("length at the tile edge");
      if (l == s.primary.topk) seen.insert("length topk");
    }
    for (std::int64_t r = 0; r < c.T(); ++r) {
      int valid = 0, leading_invalid = 0;
      bool leading = true;
      std::set<std::int64_t> tokens;
      bool dup = false;
      for (std::int32_t j = 0; j < c.primary.topk; ++j) {
        const auto ref = resolve(c.primary, c.mode, r, c.S_q, j);
        if (ref.valid()) {
          ++valid;
          leading = false;
          dup |= !tokens.insert(ref.block * 1000000 + ref.t).second;
        } else if (leading) {
          ++leading_invalid;
        }
      }
      if (c.primary.topk > 0 && valid == 0) seen.insert("all-invalid row");
      if (leading_invalid >= tile && valid > 0) seen.insert("masked leading tile");
      if (dup) seen.insert("duplicate indices");
      if (valid == 1) seen.insert("single valid slot");
    }
    if (s.num_splits > s.primary.topk + (s.extra ? s.extra->topk : 0)) seen.insert("more splits than slots");
  }
  for (std::int32_t P : {1, 2, 16, 53, 61, 64, 69, 256}) EXPECT_TRUE(pages.count(P)) << "page size " << P;
  for (std::int32_t v : {INT_MIN, -123456, -1, INT_MAX}) EXPECT_TRUE(index_values.count(v)) << "index " << v;
  for (const char* want :
       {"layout V32", "layout MODEL1", "layout MODEL1_SPLIT", "layout BF16", "fp8 e4m3fn", "fp8 e4m3fnuz",
        "table permutation", "table aliasing", "table with_invalid", "sink none", "sink finite", "sink infinite_mix",
        "values normal", "values offset", "values extremes", "extra empty", "extra full", "extra own page size",
        "fp32 scales", "padded block stride", "topk > capacity", "topk not a multiple of 64", "length 0",
        "length at the tile edge", "length topk", "all-invalid row", "masked leading tile", "duplicate indices",
        "single valid slot", "more splits than slots"})
    EXPECT_TRUE(seen.count(want)) << "never drawn: " << want;
}

TEST(FuzzGenerators, FlashMlaProfileHoldsItsPreconditions) {
  const auto k = kernel_by_name("sparse_mla_decode/fast.fused@flashmla_decode");
  for (const auto& s : sample(gen_decode_spec(k), 60)) {
    const DecodeCase c = build(s);
    EXPECT_TRUE(c.H == 64 || c.H == 128) << c.H;
    EXPECT_EQ(c.primary.topk % 64, 0);
    EXPECT_EQ(c.mode, IndexMode::physical);
    EXPECT_EQ(c.conventions, MlaConventions::flashmla());
    const std::int64_t cap = c.primary.cache.geo.capacity_tokens();
    for (auto i : c.primary.indices) EXPECT_TRUE(i == -1 || (i >= 0 && i < cap)) << "index " << i;
    for (auto l : c.primary.lengths) EXPECT_TRUE(l >= 0 && l <= c.primary.topk) << "length " << l;
  }
}

TEST(FuzzGenerators, IndexerSpecsRespectLayoutRulesAndCoverEdges) {
  const auto k = kernel_by_name("paged_mqa_logits/fast");
  std::set<std::string> seen;
  for (const auto& s : sample(gen_paged_logits_spec(k), 300)) {
    if (s.layout == IndexKLayout::preshuffle) {
      EXPECT_EQ(s.page_tokens % 16, 0);
      EXPECT_EQ(s.D % 16, 0);
    }
    const auto c = build(s);
    seen.insert(std::string("layout ") + to_string(s.layout));
    seen.insert(std::string("kind ") + to_string(s.kind));
    seen.insert(std::string("at ") + to_string(s.k_scale_at));
    seen.insert(std::string("fp8 ") + to_string(s.fp8));
    if (s.table == TableStyle::aliasing) seen.insert("aliasing");
    if (s.block_pad_words > 0) seen.insert("padded blocks");
    if (c.row_stride > c.max_ctx) seen.insert("row stride past max_ctx");
    for (auto x : s.context_lens)
      if (x == 0) seen.insert("context 0");
  }
  for (const char* want : {"layout standard", "layout preshuffle", "kind per_sequence", "kind per_row",
                           "at after_head_sum", "at per_head", "at on_k_bf16", "fp8 e4m3fn", "fp8 e4m3fnuz",
                           "aliasing", "padded blocks", "row stride past max_ctx", "context 0"})
    EXPECT_TRUE(seen.count(want)) << "never drawn: " << want;
}

class QuietListener : public rc::detail::TestListener {
 public:
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
  void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
};

// A bug needing a duplicate index shrinks to a case of a few rows, one head and a couple of slots.
TEST(FuzzGenerators, CounterexamplesShrinkToAFewRows) {
  KernelUnderTest m;
  for (auto& x : mutant_catalog())
    if (x.name == "mutant.duplicates_deduplicated") m = x;
  ASSERT_EQ(m.name, "mutant.duplicates_deduplicated");
  rc::detail::TestMetadata md{"shrink", "shrink"};
  rc::detail::TestParams tp;
  tp.seed = 42;
  tp.maxSuccess = 500;
  take_last_failure();
  QuietListener quiet;
  const auto res =
      rc::detail::checkProperty(rc::detail::toProperty([&m] { rc_check(m, "budget"); }), md, tp, quiet);
  ASSERT_TRUE(res.is<rc::detail::FailureResult>()) << "the mutant survived 500 cases";
  const auto last = take_last_failure();
  ASSERT_TRUE(last.has_value());
  const auto& c = std::get<DecodeCase>(last->c);
  EXPECT_LE(c.T(), 2) << describe(last->c);
  EXPECT_EQ(c.H, 1) << describe(last->c);
  EXPECT_LE(c.primary.topk, 2) << describe(last->c);
  EXPECT_FALSE(c.extra.has_value()) << describe(last->c);
}
