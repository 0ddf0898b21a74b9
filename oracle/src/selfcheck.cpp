// Registry and runner of the self-checks.
#include "dsa/selfcheck.hpp"

#include <chrono>
#include <exception>

namespace dsa {

std::vector<SelfCheck> all_selfchecks() {
  std::vector<SelfCheck> checks;
  add_format_checks(checks);
  add_layout_checks(checks);
  add_sparse_mla_checks(checks);
  add_indexer_checks(checks);
  return checks;
}

std::vector<CaseResult> run_selfchecks(const SelfCheckOptions& options, std::vector<std::uint64_t>* seeds_used) {
  std::vector<SelfCheck> checks;
  for (auto& c : all_selfchecks()) {
    const std::string key = c.op + "/" + c.variant + "/" + c.layout + "/" + c.profile;
    if (options.filter.empty() || key.find(options.filter) != std::string::npos) checks.push_back(std::move(c));
  }
  const std::int64_t total = static_cast<std::int64_t>(checks.size()) * options.cases_per_check;
  std::vector<CaseResult> results;
  results.reserve(static_cast<std::size_t>(total));
  std::int64_t done = 0;
  for (std::size_t k = 0; k < checks.size(); ++k) {
    for (std::int64_t i = 0; i < options.cases_per_check; ++i) {
      // Seeds differ per check and per case, and are reproducible from the run's seed.
      const std::uint64_t seed = options.seed * 1000003ull + k * 7919ull + static_cast<std::uint64_t>(i);
      if (seeds_used) seeds_used->push_back(seed);
      const auto t0 = std::chrono::steady_clock::now();
      CaseResult r;
      try {
        r = checks[k].run(seed);
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      r.op = checks[k].op;
      r.variant = checks[k].variant;
      r.layout = checks[k].layout;
      r.profile = checks[k].profile;
      r.seed = seed;
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      results.push_back(std::move(r));
      if (options.progress) options.progress(++done, total);
    }
  }
  return results;
}

}  // namespace dsa
