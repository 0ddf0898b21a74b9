// Default RapidCheck parameters of the tests/fuzz suites: few cases per property, so that the
// `cpu` label stays fast (the CI fuzz budget and long campaigns run through `dsa-oracle fuzz`).
// RC_PARAMS given by the caller wins (e.g. "reproduce=…" or "max_success=1000").
#pragma once

#include <cstdlib>

namespace dsa_fuzz_test {
// RapidCheck reads RC_PARAMS on first use, inside the first property; static initialisation of
// the test executable runs before that.
inline const bool kRcDefaults = [] {
  setenv("RC_PARAMS", "max_success=20", 0);
  return true;
}();
}  // namespace dsa_fuzz_test
