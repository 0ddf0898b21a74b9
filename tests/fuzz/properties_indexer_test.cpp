// Every indexer kernel under test satisfies every property of its op on random cases inside its
// profile: paged and non-paged logits within budget under the write contract, determinism,
// relabelling, standard ≡ preshuffle, power-of-two scale doubling, layout mismatch rejected; top-k
// by the SPEC §6.4 acceptance predicate.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "dsa/kernel_under_test.hpp"
#include "dsa/properties.hpp"
#include "fuzz/fuzz_test_params.hpp"

using dsa::fuzz::kernel_by_name;
using dsa::fuzz::rc_check;

RC_GTEST_PROP(PagedMqaLogitsFuzz, Fast, ()) {
  static const auto k = kernel_by_name("paged_mqa_logits/fast");
  rc_check(k);
}
RC_GTEST_PROP(PagedMqaLogitsFuzz, FastUnderDeepGemmProfile, ()) {
  static const auto k = kernel_by_name("paged_mqa_logits/fast@deepgemm_paged");
  rc_check(k);
}
RC_GTEST_PROP(PagedMqaLogitsFuzz, VisibleOnlyUnderTheVisibleContract, ()) {
  static const auto k = kernel_by_name("paged_mqa_logits/fast.visible_only@deepgemm_paged");
  rc_check(k);
}
RC_GTEST_PROP(PagedMqaLogitsFuzz, FastUnderAiterProfile, ()) {
  static const auto k = kernel_by_name("paged_mqa_logits/fast@aiter_paged");
  rc_check(k);
}
RC_GTEST_PROP(MqaLogitsFuzz, Fast, ()) {
  static const auto k = kernel_by_name("mqa_logits/fast");
  rc_check(k);
}
RC_GTEST_PROP(TopkFuzz, Reference, ()) {
  static const auto k = kernel_by_name("topk/reference");
  rc_check(k);
}
// The layout pair and the mismatch rejection, on their own so that each runs on every case.
RC_GTEST_PROP(PagedMqaLogitsFuzz, StandardEqualsPreshuffle, ()) {
  static const auto k = kernel_by_name("paged_mqa_logits/fast");
  rc_check(k, "layout_pair");
}
RC_GTEST_PROP(PagedMqaLogitsFuzz, LayoutMismatchRejected, ()) {
  static const auto k = kernel_by_name("paged_mqa_logits/fast");
  rc_check(k, "layout_mismatch");
}
