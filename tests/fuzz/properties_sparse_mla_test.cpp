// Every sparse MLA kernel under test (CPU fast variants, the GPU-style model kernel, the fast path
// under the FlashMLA and xkernels profiles) satisfies every property of fuzz/properties.hpp on
// random cases inside its profile: budget vs gold with sentinels and poison, determinism,
// relabelling, invalid index values, single-slot rows, sink limits, slot permutation,
// fused ≡ staged and every split count.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "dsa/kernel_under_test.hpp"
#include "dsa/properties.hpp"
#include "fuzz/fuzz_test_params.hpp"

using dsa::fuzz::kernel_by_name;
using dsa::fuzz::rc_check;

RC_GTEST_PROP(SparseMlaDecodeFuzz, FastFused, ()) {
  static const auto k = kernel_by_name("sparse_mla_decode/fast.fused");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaDecodeFuzz, FastStaged, ()) {
  static const auto k = kernel_by_name("sparse_mla_decode/fast.staged");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaDecodeFuzz, FastAutoSplits, ()) {
  static const auto k = kernel_by_name("sparse_mla_decode/fast.auto_splits");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaDecodeFuzz, ModelTiled, ()) {
  static const auto k = kernel_by_name("sparse_mla_decode/model.tiled");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaDecodeFuzz, FastFusedUnderFlashMlaProfile, ()) {
  static const auto k = kernel_by_name("sparse_mla_decode/fast.fused@flashmla_decode");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaDecodeFuzz, FastFusedUnderXkernelsProfile, ()) {
  static const auto k = kernel_by_name("sparse_mla_decode/fast.fused@xkernels");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaPrefillFuzz, FastFused, ()) {
  static const auto k = kernel_by_name("sparse_mla_prefill/fast.fused");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaPrefillFuzz, FastStaged, ()) {
  static const auto k = kernel_by_name("sparse_mla_prefill/fast.staged");
  rc_check(k);
}
RC_GTEST_PROP(SparseMlaPrefillFuzz, ModelTiled, ()) {
  static const auto k = kernel_by_name("sparse_mla_prefill/model.tiled");
  rc_check(k);
}
