// The self-check behind `dsa-oracle run`: every available variant judged against the gold
// oracle on fresh random cases, plus exact checks of formats and layouts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dsa/report.hpp"

namespace dsa {

// One registered check: a (op, variant, layout, profile) group and a function that builds a
// random case from a seed, runs the variant and the oracle, and returns the judged result.
struct SelfCheck {
  std::string op, variant, layout, profile;
  std::function<CaseResult(std::uint64_t seed)> run;
};

// Every check this build has (CPU variants; GPU variants where present).
std::vector<SelfCheck> all_selfchecks();

// Checks of number formats and cache layouts (exact: budget 0).
void add_format_checks(std::vector<SelfCheck>& checks);
void add_layout_checks(std::vector<SelfCheck>& checks);
// Every CPU fast variant of each op against gold under the op's budget (the audit of
// BUDGETS.md §4): src/selfcheck_sparse_mla.cpp, src/selfcheck_indexer.cpp.
void add_sparse_mla_checks(std::vector<SelfCheck>& checks);
void add_indexer_checks(std::vector<SelfCheck>& checks);

struct SelfCheckOptions {
  std::int64_t cases_per_check = 20;
  std::uint64_t seed = 1;
  std::string filter;  // substring of "op/variant/layout/profile"; empty = all
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

std::vector<CaseResult> run_selfchecks(const SelfCheckOptions& options, std::vector<std::uint64_t>* seeds_used);

}  // namespace dsa
