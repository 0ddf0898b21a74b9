// The campaign runner (issue 6.5): budgets parse, the GoogleTest shard protocol and CTest resource
// groups are read from the environment, shards split the work units without overlap, a campaign
// counts cases per kernel, and a failing kernel leaves a shrunk case file and a reproduce string
// that replays it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <unistd.h>

#include "dsa/campaign.hpp"
#include "dsa/corpus.hpp"
#include "dsa/error.hpp"

using namespace dsa;
using namespace dsa::fuzz;
namespace fs = std::filesystem;

TEST(CampaignBudget, CasesOrSeconds) {
  EXPECT_EQ(parse_budget("5000").cases, 5000);
  EXPECT_EQ(parse_budget("5000 cases").cases, 5000);
  EXPECT_EQ(parse_budget("90s").seconds, 90.0);
  EXPECT_EQ(parse_budget("1.5 seconds").seconds, 1.5);
  EXPECT_THROW(parse_budget("ten"), InvalidArgument);
  EXPECT_THROW(parse_budget("0"), InvalidArgument);
  EXPECT_THROW(parse_budget("2.5"), InvalidArgument);
  EXPECT_THROW(parse_budget("5m"), InvalidArgument);
}

TEST(CampaignEnvironment, ShardsAndResourceGroups) {
  unsetenv("GTEST_TOTAL_SHARDS");
  unsetenv("GTEST_SHARD_INDEX");
  EXPECT_EQ(shard_from_environment().total, 1);
  setenv("GTEST_TOTAL_SHARDS", "4", 1);
  setenv("GTEST_SHARD_INDEX", "3", 1);
  EXPECT_EQ(shard_from_environment().index, 3);
  EXPECT_EQ(shard_from_environment().total, 4);
  setenv("GTEST_SHARD_INDEX", "4", 1);
  EXPECT_THROW(shard_from_environment(), InvalidArgument);
  unsetenv("GTEST_TOTAL_SHARDS");
  unsetenv("GTEST_SHARD_INDEX");

  unsetenv("CTEST_RESOURCE_GROUP_COUNT");
  EXPECT_EQ(device_from_environment(), -1);
  setenv("CTEST_RESOURCE_GROUP_COUNT", "1", 1);
  setenv("CTEST_RESOURCE_GROUP_0", "gpus", 1);
  setenv("CTEST_RESOURCE_GROUP_0_GPUS", "id:3,slots:1", 1);
  EXPECT_EQ(device_from_environment(), 3);
  setenv("CTEST_RESOURCE_GROUP_0_GPUS", "slots:1", 1);
  EXPECT_THROW(device_from_environment(), InvalidArgument);
  unsetenv("CTEST_RESOURCE_GROUP_COUNT");
  unsetenv("CTEST_RESOURCE_GROUP_0");
  unsetenv("CTEST_RESOURCE_GROUP_0_GPUS");
}

TEST(Campaign, ShardsSplitTheUnitsWithoutOverlap) {
  CampaignOptions o;
  o.budget = {60, 0.0};
  o.unit_cases = 5;
  o.seeds = {9};
  o.op = "topk";
  o.progress = false;
  const CampaignResult all = run_campaign(o);
  EXPECT_EQ(all.cases, 60);
  std::set<std::uint64_t> seen;
  std::int64_t cases = 0;
  for (int s = 0; s < 3; ++s) {
    o.shard = {s, 3};
    const CampaignResult part = run_campaign(o);
    cases += part.cases;
    for (auto x : part.seeds) EXPECT_TRUE(seen.insert(x).second) << "unit seed run by two shards";
  }
  EXPECT_EQ(cases, all.cases);
  EXPECT_EQ(seen, std::set<std::uint64_t>(all.seeds.begin(), all.seeds.end()));
}

TEST(Campaign, CountsCasesPerKernelAndOp) {
  CampaignOptions o;
  o.budget = {40, 0.0};
  o.unit_cases = 10;
  o.seeds = {5};
  o.op = "mqa_logits";
  o.progress = false;
  const CampaignResult r = run_campaign(o);
  EXPECT_TRUE(r.failures.empty());
  ASSERT_EQ(r.kernels.size(), 1u);
  EXPECT_EQ(r.kernels[0].cases, 40);
  EXPECT_NE(throughput_table(r).find("mqa_logits"), std::string::npos);
}

TEST(Campaign, AFailureLeavesAShrunkCaseFileAndAReproduceString) {
  const fs::path dir = fs::temp_directory_path() / ("dsa-fuzz-corpus-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  CampaignOptions o;
  o.budget = {200, 0.0};
  o.unit_cases = 200;
  o.seeds = {1};
  o.mutants = true;
  o.kernel = "mutant.lse_base2";
  o.corpus_dir = dir.string();
  o.progress = false;
  const CampaignResult r = run_campaign(o);
  ASSERT_EQ(r.failures.size(), 1u);
  const Failure& f = r.failures[0];
  EXPECT_EQ(f.property, "budget");
  EXPECT_NE(f.reproduce.find("reproduce="), std::string::npos) << f.reproduce;
  ASSERT_FALSE(f.corpus_file.empty());
  const ReplayResult rr = replay_corpus_file(f.corpus_file);
  EXPECT_TRUE(rr.problems.empty()) << (rr.problems.empty() ? "" : rr.problems[0]);
  EXPECT_GE(rr.kernels_run, 2);  // the correct kernels pass it, the mutant still fails it

  // The reproduce string replays the same (shrunk) failure directly.
  CampaignOptions again = o;
  again.reproduce = f.reproduce;
  again.corpus_dir.clear();
  const CampaignResult rep = run_campaign(again);
  ASSERT_EQ(rep.failures.size(), 1u);
  EXPECT_EQ(rep.failures[0].shrunk_case, f.shrunk_case);
  fs::remove_all(dir);
}

// A provider (how a GPU build plugs its kernels in) adds kernels that campaigns then fuzz.
TEST(Campaign, RegisteredProvidersAddKernels) {
  register_kernel_provider([] {
    KernelUnderTest k = kernel_by_name("topk/reference");
    k.name = "provided.topk";
    return std::vector<KernelUnderTest>{k};
  });
  CampaignOptions o;
  o.budget = {30, 0.0};
  o.unit_cases = 10;
  o.kernel = "provided.topk";
  o.progress = false;
  const CampaignResult r = run_campaign(o);
  ASSERT_EQ(r.kernels.size(), 1u);
  EXPECT_EQ(r.kernels[0].kernel, "provided.topk");
  EXPECT_EQ(r.kernels[0].cases, 30);
  EXPECT_TRUE(r.failures.empty());
}
