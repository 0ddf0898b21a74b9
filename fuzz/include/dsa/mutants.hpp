// The mutant catalog (issue 6.6): deliberately broken kernels under test, each reproducing one
// real bug class of sparse-attention kernels as a wrapper around the correct fast path or as a
// compile-time variant of the GPU-style model kernel — never as a switch inside the project's
// correct code. `dsa-oracle selftest` runs every mutant through the properties and must kill all.
#pragma once

#include <vector>

#include "dsa/kernel_under_test.hpp"

namespace dsa::fuzz {

// Every mutant: KernelUnderTest with mutant = true and `bug` saying what it gets wrong.
std::vector<KernelUnderTest> mutant_catalog();

}  // namespace dsa::fuzz
