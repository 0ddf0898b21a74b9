// Default RapidCheck parameters of the tests/fuzz suites: few cases per property, so that the
// `cpu` label stays fast (the CI fuzz budget and long campaigns run through `dsa-oracle fuzz`).
// RC_PARAMS given by the caller wins (e.g. "reproduce=…" or "max_success=1000").
#pragma once

#include <omp.h>

#include <cstdlib>

namespace dsa_fuzz_test {
// RapidCheck reads RC_PARAMS on first use, inside the first property; static initialisation of
// the test executable runs before that.
// One OpenMP thread, as in campaigns: fuzz cases are small, and a team only spins.
inline const bool kRcDefaults = [] {
  setenv("RC_PARAMS", "max_success=20", 0);
  omp_set_num_threads(1);
  return true;
}();
}  // namespace dsa_fuzz_test
