// SPEC §4 split-KV: partials (o_i, lse_i) over contiguous chunks of the slot axis, empty chunk =
// (0, −inf), the combine, and the sink applied once after it.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <climits>

#include "dsa/error.hpp"
#include "reference/sparse_mla_cases.hpp"

namespace dsa {
namespace {

using test::DecodeCase;
using test::Outputs;

Outputs run_fast(const DecodeCase& c, MlaFastAlgo algo, int num_splits) {
  Outputs o(c.T(), c.H);
  sparse_mla_decode_fast(c.params(), o.view(), {algo, num_splits});
  return o;
}

// Every num_splits in 1..16 (including more chunks than slots, so that chunks are empty) stays
// within the interim bound of gold for that split count.
RC_GTEST_PROP(SparseMlaSplit, EverySplitCountIsWithinTheBoundOfGold, ()) {
  const auto spec = *test::gen_case_spec(8, 96);
  const DecodeCase c = test::build_case(spec);
  SparseMlaGoldStats stats;
  const SparseMlaGold gold = sparse_mla_decode_gold(c.params(), &stats);
  for (int ns = 1; ns <= 16; ++ns) {
    const Outputs fast = run_fast(c, MlaFastAlgo::fused, ns);
    const std::string failure =
        test::check_against_gold(fast, gold, sparse_mla_interim_bound(gold, stats, c.conventions, ns));
    if (!failure.empty()) RC_FAIL(fmt::format("num_splits={}: {}", ns, failure));
  }
}

// Chunks without a valid slot are (0, −inf) and vanish in the combine exactly: when every valid
// slot of every row lies in chunk 0, any split count gives the unsplit bits.
RC_GTEST_PROP(SparseMlaSplit, EmptyChunksAreNeutral, ()) {
  auto spec = *test::gen_case_spec(8, 64);
  spec.extra.reset();
  spec.primary.lengths = false;
  DecodeCase c = test::build_case(spec);
  const int num_splits = *rc::gen::inRange(2, 17);
  // Keep only the slots of chunk 0 as they are; make the rest invalid.
  const std::int64_t chunk0_end = split_range(c.topk, num_splits, 0).end;
  for (std::int64_t r = 0; r < c.T(); ++r)
    for (std::int64_t j = chunk0_end; j < c.topk; ++j) c.indices[static_cast<std::size_t>(r * c.topk + j)] = -1;
  const Outputs unsplit = run_fast(c, MlaFastAlgo::fused, 1);
  const Outputs split = run_fast(c, MlaFastAlgo::fused, num_splits);
  RC_ASSERT(test::first_difference(unsplit, split) == "");
}

// num_splits = 1 is the single pass (the combine of one partial is exact): the automatic count on a
// problem that already fills every thread, and an explicit 1, give the same bits as each other.
TEST(SparseMlaSplit, OneSplitIsTheSinglePass) {
  test::CaseSpec spec;
  spec.B = 3;
  spec.S_q = 2;
  spec.H = 5;
  spec.primary.topk = 40;
  spec.sink = test::SinkKind::finite;
  const DecodeCase c = test::build_case(spec);
  ASSERT_EQ(choose_cpu_num_splits(c.T(), c.H, c.topk, 2), 1);
  const Outputs a = run_fast(c, MlaFastAlgo::fused, 1);
  const Outputs b = run_fast(c, MlaFastAlgo::fused, 0);
  EXPECT_EQ(test::first_difference(a, b), "");
}

TEST(SparseMlaSplit, SinkIsAppliedOnceAfterTheCombine) {
  // One head, two valid slots in different chunks with equal logits: o = (v_0 + v_1)/2,
  // lse = z + ln 2; a sink equal to lse halves out once (applying it per chunk would not).
  test::CaseSpec spec;
  spec.H = 1;
  spec.primary.layout = MlaLayout::BF16;
  spec.primary.topk = 4;
  spec.primary.num_blocks = 1;
  spec.primary.page_tokens = 4;
  DecodeCase c = test::build_case(spec);
  c.indices = {2, -1, 2, INT_MIN};  // the same token twice: equal logits
  for (int ns : {1, 2, 4}) {
    c.sink.clear();
    const Outputs no_sink = run_fast(c, MlaFastAlgo::fused, ns);
    c.sink = {no_sink.lse[0]};  // factor 1 / (1 + e^0) = 1/2, exactly
    const Outputs o = run_fast(c, MlaFastAlgo::fused, ns);
    EXPECT_EQ(o.lse[0], no_sink.lse[0]);
    for (std::size_t d = 0; d < 512; ++d)
      ASSERT_EQ(bf16_to_f32(o.out[d]), 0.5f * bf16_to_f32(no_sink.out[d])) << "num_splits " << ns << " d " << d;
  }
}

TEST(SparseMlaSplit, RejectsNegativeSplitCounts) {
  test::CaseSpec spec;
  const DecodeCase c = test::build_case(spec);
  Outputs o(c.T(), c.H);
  EXPECT_THROW(sparse_mla_decode_fast(c.params(), o.view(), {MlaFastAlgo::fused, -1}), InvalidArgument);
}

}  // namespace
}  // namespace dsa
