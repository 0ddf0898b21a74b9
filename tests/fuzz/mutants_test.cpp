// The mutation self-test (issue 6.6): the catalog holds at least 14 mutants, each a kernel under
// test of a known op reproducing one named bug class, and every one of them is killed by a
// property within the CI budget under the fixed CI seeds — every run, since the seeds are fixed.
#include <gtest/gtest.h>

#include <set>

#include "dsa/campaign.hpp"
#include "dsa/mutants.hpp"
#include "dsa/properties.hpp"

using namespace dsa;
using namespace dsa::fuzz;

namespace {
// The CI's per-mutant budget (tools/ci-fuzz.sh passes the same number to `dsa-oracle selftest`).
constexpr std::int64_t kCiMutantBudget = 1000;
}  // namespace

TEST(MutantCatalog, HoldsAtLeastFourteenDistinctNamedBugClasses) {
  const auto catalog = mutant_catalog();
  EXPECT_GE(catalog.size(), 14u);
  std::set<std::string> names;
  for (const auto& m : catalog) {
    EXPECT_TRUE(m.mutant) << m.name;
    EXPECT_FALSE(m.bug.empty()) << m.name;
    EXPECT_TRUE(names.insert(m.name).second) << "duplicate name " << m.name;
    const int callables = !!m.decode + !!m.prefill + !!m.paged_logits + !!m.logits + !!m.topk;
    EXPECT_EQ(callables, 1) << m.name << " must implement exactly its op";
  }
}

TEST(MutantCatalog, CorrectKernelsAreNotMutantsAndEveryPropertyIsExercised) {
  std::set<std::string> exercised;
  for (const auto& k : correct_kernels()) {
    EXPECT_FALSE(k.mutant) << k.name;
    for (const auto& p : properties(k.op))
      if (applies(k, p.name)) exercised.insert(std::string(to_string(k.op)) + "/" + p.name);
  }
  for (Op op : kAllOps)
    for (const auto& p : properties(op))
      EXPECT_TRUE(exercised.count(std::string(to_string(op)) + "/" + p.name))
          << "no correct kernel is checked by " << to_string(op) << "/" << p.name;
}

class MutantKilled : public ::testing::TestWithParam<std::string> {};

TEST_P(MutantKilled, WithinTheCiBudget) {
  SelftestOptions o;
  o.max_cases = kCiMutantBudget;
  o.mutant = GetParam();
  o.progress = false;
  const auto out = run_selftest(o);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].killed) << out[0].mutant << " (" << out[0].bug << ") survived " << out[0].cases << " cases";
  if (out[0].killed)
    std::printf("%s killed by %s after %lld cases\n", out[0].mutant.c_str(), out[0].property.c_str(),
                static_cast<long long>(out[0].cases));
}

INSTANTIATE_TEST_SUITE_P(Catalog, MutantKilled, ::testing::ValuesIn([] {
                           std::vector<std::string> names;
                           for (const auto& m : mutant_catalog()) names.push_back(m.name);
                           return names;
                         }()),
                         [](const auto& info) {
                           std::string n = info.param.substr(info.param.find('.') + 1);
                           return n;
                         });
