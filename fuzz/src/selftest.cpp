// The mutation self-test: every mutant of the catalog runs through the properties of its op under
// the fixed CI seeds until one property kills it; the table says which, and after how many cases.
#include <fmt/format.h>
#include <rapidcheck.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "dsa/campaign.hpp"
#include "dsa/error.hpp"
#include "dsa/mutants.hpp"
#include "dsa/properties.hpp"

namespace dsa::fuzz {

namespace {

using Clock = std::chrono::steady_clock;

class NullListener : public rc::detail::TestListener {
 public:
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
  void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
};

}  // namespace

std::vector<MutantOutcome> run_selftest(const SelftestOptions& o) {
  std::vector<MutantOutcome> out;
  std::vector<KernelUnderTest> mutants;
  for (auto& m : mutant_catalog())
    if (o.mutant.empty() || m.name.find(o.mutant) != std::string::npos) mutants.push_back(std::move(m));
  if (mutants.empty()) throw InvalidArgument("mutant", fmt::format("no mutant matches '{}'", o.mutant));
  if (o.seeds.empty()) throw InvalidArgument("seeds", "need at least one seed");
  omp_set_num_threads(std::max(o.threads, 1));

  // The first failing evaluation of a run is the kill (shrinking is off: the kill is the point).
  struct {
    bool failed = false;
    std::string property, message;
  } first;
  RcObserver observer;
  observer.on_case = [&](const KernelUnderTest&, const AnyCase&, const Verdict& v, double) {
    if (!v.pass && !first.failed) {
      first.failed = true;
      first.property = v.property;
      first.message = v.message;
    }
  };
  set_rc_observer(&observer);
  NullListener listener;
  const auto t_all = Clock::now();
  for (const auto& m : mutants) {
    MutantOutcome r;
    r.op = to_string(m.op);
    r.mutant = m.name;
    r.bug = m.bug;
    const auto t0 = Clock::now();
    for (std::size_t si = 0; r.cases < o.max_cases && !r.killed; ++si) {
      // The fixed seeds first, then seeds derived from them, so a larger budget extends the run.
      const std::uint64_t seed = o.seeds[si % o.seeds.size()] + 1000003ull * (si / o.seeds.size());
      rc::detail::TestMetadata md;
      md.id = fmt::format("{}/{}", r.op, m.name);
      md.description = md.id;
      rc::detail::TestParams tp;
      tp.seed = seed;
      tp.maxSuccess = static_cast<int>(std::min(o.unit_cases, o.max_cases - r.cases));
      tp.maxSize = 100;
      tp.disableShrinking = true;
      first = {};
      const auto res = rc::detail::checkProperty(rc::detail::toProperty([&m] { rc_check(m); }), md, tp, listener);
      take_last_failure();
      if (res.is<rc::detail::FailureResult>()) {
        r.killed = true;
        r.cases += res.get<rc::detail::FailureResult>().numSuccess + 1;
        r.property = first.failed ? first.property : "?";
        r.message = first.failed ? first.message : res.get<rc::detail::FailureResult>().description;
        r.seed = seed;
      } else if (res.is<rc::detail::SuccessResult>()) {
        r.cases += res.get<rc::detail::SuccessResult>().numSuccess;
      } else {
        set_rc_observer(nullptr);
        throw InvalidArgument("selftest", fmt::format("{}: RapidCheck could not run (generation error)", m.name));
      }
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (o.progress)
      fmt::print(stderr, "{:<8} {:<48} {}\n", r.killed ? "killed" : "SURVIVED", r.op + "/" + r.mutant,
                 r.killed ? fmt::format("by {} after {} cases ({:.1f} s): {}", r.property, r.cases, r.seconds,
                                        r.message.substr(0, 200))
                          : fmt::format("{} cases ({:.1f} s)", r.cases, r.seconds));
    out.push_back(std::move(r));
  }
  set_rc_observer(nullptr);

  if (!o.report_dir.empty()) {
    std::vector<CaseResult> cases;
    for (const auto& r : out) {
      CaseResult c;
      c.op = r.op;
      c.variant = r.mutant;
      c.layout = "-";
      c.profile = r.killed ? "killed by " + r.property : "survived";
      c.shape = fmt::format("{} cases", r.cases);
      c.seed = r.seed;
      c.seconds = r.seconds;
      if (!r.killed) c.error = fmt::format("mutant survived {} cases: {}", r.cases, r.bug);
      cases.push_back(std::move(c));
    }
    RunInfo info;
    info.command = o.command;
    info.build = build_info();
    info.device = "CPU: " + info.build.cpu_model;
    info.seeds = o.seeds;
    info.started_utc = utc_now_iso8601();
    info.seconds = std::chrono::duration<double>(Clock::now() - t_all).count();
    std::filesystem::create_directories(o.report_dir);
    const std::string base = (std::filesystem::path(o.report_dir) / "selftest").string();
    write_markdown_report(base + ".md", info, cases);
    write_json_report(base + ".json", info, cases);
    write_junit_report(base + ".junit.xml", info, cases);
    std::ofstream md(base + ".md", std::ios::app);
    md << "\n## Kill table\n\n" << kill_table(out);
  }
  return out;
}

std::string kill_table(const std::vector<MutantOutcome>& outcomes) {
  std::string s = "| mutant | op | bug | verdict | killed by | cases | seconds |\n|---|---|---|---|---|---:|---:|\n";
  int killed = 0;
  for (const auto& r : outcomes) {
    killed += r.killed ? 1 : 0;
    s += fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} |\n", r.mutant, r.op, r.bug,
                     r.killed ? "killed" : "**SURVIVED**", r.killed ? r.property : "—", r.cases, r.seconds);
  }
  s += fmt::format("\n{} of {} mutants killed.\n", killed, outcomes.size());
  return s;
}

}  // namespace dsa::fuzz
