// Fuzz campaigns (issue 6.5) and the mutation self-test (issue 6.6). A campaign splits a budget
// (cases or seconds) into work units — one RapidCheck run of one kernel under one seed — shares
// them among GoogleTest-protocol shards (GTEST_TOTAL_SHARDS / GTEST_SHARD_INDEX), runs them with
// a progress bar, writes every shrunk counterexample to the corpus and the reports (report.hpp)
// with throughput per op. The self-test runs every mutant until a property kills it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dsa/kernel_under_test.hpp"
#include "dsa/report.hpp"

namespace dsa::fuzz {

// "--budget": a number of cases ("5000", "5000cases") or of seconds ("90s", "90 seconds").
struct Budget {
  std::int64_t cases = 0;
  double seconds = 0.0;
};
Budget parse_budget(const std::string& text);  // throws InvalidArgument("budget", ...)

// The CI's fixed seed list (reproducible) — tools/ci-fuzz.sh adds one fresh seed and prints it.
inline constexpr std::uint64_t kCiSeeds[] = {1, 2, 3, 5, 8, 13, 21, 34};

// Shard of this process from GTEST_TOTAL_SHARDS / GTEST_SHARD_INDEX (0 of 1 when unset); the
// GPU device from CTest's resource allocation (CTEST_RESOURCE_GROUP_COUNT,
// CTEST_RESOURCE_GROUP_0_GPUS = "id:N,slots:M"; −1 when unset). Throw InvalidArgument when malformed.
struct Shard {
  int index = 0;
  int total = 1;
};
Shard shard_from_environment();
int device_from_environment();

struct CampaignOptions {
  Budget budget{2000, 0.0};
  std::vector<std::uint64_t> seeds = {1};  // unit u uses seeds[u % seeds.size()] mixed with u
  std::string op;                          // only this op ("" = all)
  std::string kernel;                      // only kernels whose "op/name" contains this
  bool mutants = false;                    // run the mutant catalog instead of the correct kernels
  std::int64_t unit_cases = 50;            // cases of one RapidCheck run
  bool shrink = true;
  std::string corpus_dir;                  // shrunk counterexamples go here ("" = not written)
  std::string report_dir;                  // reports go here ("" = none)
  std::string command;                     // the command line, for the reports
  Shard shard;
  int device = -1;
  bool progress = true;                    // progress bar on stderr
  // OpenMP threads per kernel call. Fuzz cases are small, so a team costs more than it saves
  // (and spins on a loaded machine): one thread per process, shards for parallelism.
  int threads = 1;
  std::string reproduce;                   // an RC_PARAMS "reproduce=…" string: replay that failure
};

// What one kernel did over the campaign.
struct KernelTally {
  std::string op, kernel, profile;
  std::int64_t cases = 0, failures = 0;
  double seconds = 0.0;
  double worst_ratio = 0.0;
  RatioHistogram histogram;
};

struct Failure {
  std::string op, kernel, property, message;
  std::string reproduce;     // RC_PARAMS value that replays it
  std::string corpus_file;   // where the shrunk case went ("" if not written)
  std::string shrunk_case;   // the shrunk case, described
  std::uint64_t seed = 0;
  std::int64_t cases_before = 0;  // passing cases of that run before the failure
};

struct CampaignResult {
  std::vector<KernelTally> kernels;
  std::vector<Failure> failures;
  std::vector<std::uint64_t> seeds;  // the seed of every unit this shard ran
  std::int64_t cases = 0;
  double seconds = 0.0;
  std::vector<CaseResult> report_cases;  // one aggregate per kernel + one per failure
};

CampaignResult run_campaign(const CampaignOptions& options);
// Markdown table: op, kernel, cases, failures, seconds, cases/s, worst ratio.
std::string throughput_table(const CampaignResult& r);

// ---- mutation self-test ----------------------------------------------------------------------
struct SelftestOptions {
  std::int64_t max_cases = 1000;  // per mutant: the budget within which it must die
  std::vector<std::uint64_t> seeds = {std::begin(kCiSeeds), std::end(kCiSeeds)};
  std::int64_t unit_cases = 100;
  std::string mutant;             // only mutants whose name contains this
  std::string report_dir;
  std::string command;
  bool progress = true;
  int threads = 1;  // as CampaignOptions::threads
};

struct MutantOutcome {
  std::string op, mutant, bug;
  bool killed = false;
  std::string property;     // the property that killed it
  std::string message;      // its failure
  std::int64_t cases = 0;   // cases run until the kill (inclusive), or all cases when it survived
  double seconds = 0.0;
  std::uint64_t seed = 0;
};

std::vector<MutantOutcome> run_selftest(const SelftestOptions& options);
std::string kill_table(const std::vector<MutantOutcome>& outcomes);

}  // namespace dsa::fuzz
