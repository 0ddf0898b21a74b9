// The campaign runner: work units of (kernel, seed) run through RapidCheck's checkProperty with
// our own listener (progress, case counts), shrunk failures written to the corpus, reports.
#include "dsa/campaign.hpp"

#include <fmt/format.h>
#include <rapidcheck.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "dsa/corpus.hpp"
#include "dsa/error.hpp"
#include "dsa/mutants.hpp"
#include "dsa/properties.hpp"
#include "rapidcheck/detail/Configuration.h"

namespace dsa::fuzz {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 20)
    throw InvalidArgument(name, fmt::format("must be a non-negative integer (got '{}')", v));
  return static_cast<int>(x);
}

// Counts generated cases (not shrink steps) and draws the progress bar.
class Listener : public rc::detail::TestListener {
 public:
  std::function<void()> on_case;
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {
    if (on_case) on_case();
  }
  void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
};

std::string unit_id(const KernelUnderTest& k) { return fmt::format("{}/{}", to_string(k.op), k.name); }

std::vector<KernelUnderTest> select_kernels(const CampaignOptions& o) {
  std::vector<KernelUnderTest> out;
  for (auto& k : o.mutants ? mutant_catalog() : correct_kernels()) {
    if (!o.op.empty() && o.op != to_string(k.op)) continue;
    if (!o.kernel.empty() && unit_id(k).find(o.kernel) == std::string::npos && k.name != o.kernel) continue;
    out.push_back(std::move(k));
  }
  return out;
}

std::string reproduce_string(const rc::detail::TestParams& params, const std::string& id,
                             const rc::detail::Reproduce& reproduce) {
  rc::detail::Configuration cfg;
  cfg.testParams = params;
  cfg.reproduce[id] = reproduce;
  return rc::detail::configToMinimalString(cfg);
}

void draw_progress(bool tty, std::int64_t done, std::int64_t total, double seconds, double budget_s,
                   std::size_t failures, bool final) {
  if (!tty && !final) return;
  const int width = 30;
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total)
                                : (budget_s > 0 ? std::min(1.0, seconds / budget_s) : 1.0);
  const int filled = static_cast<int>(width * std::min(1.0, frac));
  fmt::print(stderr, "\r[{}{}] {} cases{} {:.0f} s {:.1f} cases/s {} failure{}   ", std::string(filled, '#'),
             std::string(width - filled, '.'), done, total > 0 ? fmt::format("/{}", total) : "", seconds,
             seconds > 0 ? static_cast<double>(done) / seconds : 0.0, failures, failures == 1 ? "" : "s");
  if (final) fmt::print(stderr, "\n");
}

}  // namespace

Budget parse_budget(const std::string& text) {
  std::string t;
  for (char c : text)
    if (c != ' ') t += c;
  std::size_t pos = 0;
  double x = 0;
  try {
    x = std::stod(t, &pos);
  } catch (const std::exception&) {
    throw InvalidArgument("budget", fmt::format("'{}' is not '<N>' cases or '<N>s' seconds", text));
  }
  const std::string unit = t.substr(pos);
  if (!(x > 0)) throw InvalidArgument("budget", fmt::format("must be positive (got '{}')", text));
  if (unit.empty() || unit == "cases" || unit == "case") {
    if (x != std::floor(x)) throw InvalidArgument("budget", fmt::format("a case count must be whole (got '{}')", text));
    return {static_cast<std::int64_t>(x), 0.0};
  }
  if (unit == "s" || unit == "sec" || unit == "seconds" || unit == "second") return {0, x};
  throw InvalidArgument("budget", fmt::format("unknown unit '{}' in '{}' (use cases or s)", unit, text));
}

Shard shard_from_environment() {
  Shard s;
  s.total = env_int("GTEST_TOTAL_SHARDS", 1);
  s.index = env_int("GTEST_SHARD_INDEX", 0);
  if (s.total < 1) throw InvalidArgument("GTEST_TOTAL_SHARDS", "must be ≥ 1");
  if (s.index >= s.total)
    throw InvalidArgument("GTEST_SHARD_INDEX", fmt::format("must be < GTEST_TOTAL_SHARDS = {} (got {})", s.total, s.index));
  return s;
}

int device_from_environment() {
  if (env_int("CTEST_RESOURCE_GROUP_COUNT", 0) < 1) return -1;
  const char* gpus = std::getenv("CTEST_RESOURCE_GROUP_0_GPUS");
  if (!gpus || !*gpus) return -1;
  // "id:N,slots:M" (CTest's resource allocation; the first group's first GPU is ours).
  const std::string s = gpus;
  const auto at = s.find("id:");
  if (at == std::string::npos)
    throw InvalidArgument("CTEST_RESOURCE_GROUP_0_GPUS", fmt::format("expected 'id:N,slots:M' (got '{}')", s));
  const std::string id = s.substr(at + 3, s.find(',', at) == std::string::npos ? std::string::npos : s.find(',', at) - at - 3);
  try {
    return std::stoi(id);
  } catch (const std::exception&) {
    throw InvalidArgument("CTEST_RESOURCE_GROUP_0_GPUS", fmt::format("device id '{}' is not a number", id));
  }
}

CampaignResult run_campaign(const CampaignOptions& o) {
  if (o.seeds.empty()) throw InvalidArgument("seeds", "need at least one seed");
  if (o.unit_cases < 1) throw InvalidArgument("unit_cases", "must be ≥ 1");
  if (o.budget.cases <= 0 && o.budget.seconds <= 0) throw InvalidArgument("budget", "needs cases or seconds");
  const std::vector<KernelUnderTest> kernels = select_kernels(o);
  if (kernels.empty())
    throw InvalidArgument("kernel", fmt::format("no kernel matches op '{}' and kernel '{}'", o.op, o.kernel));
  if (o.threads < 1) throw InvalidArgument("threads", fmt::format("must be ≥ 1 (got {})", o.threads));
  set_device(o.device);
  omp_set_num_threads(o.threads);

  CampaignResult res;
  std::map<std::string, KernelTally> tallies;
  for (const auto& k : kernels) {
    KernelTally t;
    t.op = to_string(k.op);
    t.kernel = k.name;
    t.profile = k.profile.name;
    tallies[unit_id(k)] = t;
  }
  const bool tty = o.progress && isatty(fileno(stderr));
  const auto t0 = Clock::now();
  const std::int64_t total_cases = o.budget.cases;
  // Unit u runs kernel u mod K under a seed derived from u, whatever the shard count; a shard
  // takes the units that hash to it (hashing, not u mod shards, so that every shard gets every
  // kernel even when the shard count divides K).
  auto mine = [&](std::int64_t u) {
    return o.shard.total == 1 ||
           static_cast<int>(splitmix(static_cast<std::uint64_t>(u) ^ 0x5AADull) % static_cast<std::uint64_t>(o.shard.total)) ==
               o.shard.index;
  };
  // This shard's share of a case budget, for the progress bar.
  std::int64_t my_total = 0;
  if (total_cases > 0) {
    const std::int64_t units = (total_cases + o.unit_cases - 1) / o.unit_cases;
    for (std::int64_t u = 0; u < units; ++u)
      if (mine(u)) my_total += std::min(o.unit_cases, total_cases - u * o.unit_cases);
  }

  // The observer sees every evaluation: tallies (until the run's first failure; what follows is
  // shrinking) and the first failure of a run.
  struct UnitState {
    bool failed = false;
    std::string property, message;
  } unit;
  RcObserver observer;
  observer.on_case = [&](const KernelUnderTest& k, const AnyCase&, const Verdict& v, double seconds) {
    if (unit.failed) return;
    auto& t = tallies[unit_id(k)];
    t.seconds += seconds;
    for (const auto& r : v.judged) {
      t.histogram.merge(r.histogram);
      if (r.pass()) t.worst_ratio = std::max(t.worst_ratio, r.worst_ratio());
    }
    if (!v.pass) {
      unit.failed = true;
      unit.property = v.property;
      unit.message = v.message;
    }
  };
  set_rc_observer(&observer);
  Listener listener;
  std::int64_t done = 0;
  listener.on_case = [&] {
    ++done;
    if (tty && done % 5 == 0) draw_progress(true, done, my_total, since(t0), o.budget.seconds, res.failures.size(), false);
  };

  auto run_unit = [&](std::int64_t u, std::int64_t cases) {
    const KernelUnderTest& k = kernels[static_cast<std::size_t>(u % static_cast<std::int64_t>(kernels.size()))];
    const std::uint64_t seed = splitmix(o.seeds[static_cast<std::size_t>(u) % o.seeds.size()] ^ splitmix(static_cast<std::uint64_t>(u)));
    rc::detail::TestMetadata md;
    md.id = unit_id(k);
    md.description = md.id;
    rc::detail::TestParams tp;
    tp.seed = seed;
    tp.maxSuccess = static_cast<int>(cases);
    tp.maxSize = 100;
    tp.disableShrinking = !o.shrink;
    std::unordered_map<std::string, rc::detail::Reproduce> repro;
    if (!o.reproduce.empty()) {
      const auto cfg = rc::detail::configFromString(o.reproduce);
      repro = cfg.reproduce;
      tp = cfg.testParams;
    }
    unit = {};
    take_last_failure();
    const std::int64_t before = done;
    const auto result = rc::detail::checkProperty(rc::detail::toProperty([&k] { rc_check(k); }), md, tp, listener, repro);
    auto& t = tallies[md.id];
    t.cases += done - before;
    res.seeds.push_back(seed);
    if (result.is<rc::detail::FailureResult>()) {
      const auto* f = &result.get<rc::detail::FailureResult>();
      ++t.failures;
      Failure fl;
      fl.op = to_string(k.op);
      fl.kernel = k.name;
      fl.seed = seed;
      fl.cases_before = f->numSuccess;
      fl.reproduce = reproduce_string(tp, md.id, f->reproduce);
      auto last = take_last_failure();
      fl.property = last ? last->verdict.property : unit.property;
      fl.message = last ? last->verdict.message : f->description;
      if (last) {
        fl.shrunk_case = describe(last->c);
        if (!o.corpus_dir.empty()) {
          CorpusMeta meta{md.id, fl.property, fl.message, fl.reproduce, seed};
          fl.corpus_file = write_corpus_case(o.corpus_dir, last->c, meta);
        }
      }
      if (tty) fmt::print(stderr, "\n");
      fmt::print(stderr, "FAIL {} [{}] {}: {}\n  shrunk case: {}\n  replay: dsa-oracle fuzz --kernel {} --reproduce '{}'\n{}",
                 md.id, k.profile.name, fl.property, fl.message, fl.shrunk_case, md.id, fl.reproduce,
                 fl.corpus_file.empty() ? "" : fmt::format("  case file: {}\n", fl.corpus_file));
      res.failures.push_back(std::move(fl));
    } else if (result.is<rc::detail::GaveUpResult>()) {
      const auto* g = &result.get<rc::detail::GaveUpResult>();
      res.failures.push_back({to_string(k.op), k.name, "generation", "gave up: " + g->description, "", "", "", seed, 0});
    } else if (result.is<rc::detail::Error>() && !o.reproduce.empty() &&
               result.get<rc::detail::Error>().description.find("not a failure") != std::string::npos) {
      fmt::print(stderr, "{}: the reproduced case passes now (the failure is fixed)\n", md.id);
    } else if (result.is<rc::detail::Error>()) {
      const auto* e = &result.get<rc::detail::Error>();
      res.failures.push_back({to_string(k.op), k.name, "generation", "error: " + e->description, "", "", "", seed, 0});
    }
  };

  try {
    if (!o.reproduce.empty()) {
      if (kernels.size() != 1)
        throw InvalidArgument("kernel", fmt::format("--reproduce replays one kernel; '{}' matches {}", o.kernel,
                                                    kernels.size()));
      run_unit(0, 1);
    } else if (total_cases > 0) {
      const std::int64_t units = (total_cases + o.unit_cases - 1) / o.unit_cases;
      for (std::int64_t u = 0; u < units; ++u) {
        if (!mine(u)) continue;
        if (o.budget.seconds > 0 && since(t0) >= o.budget.seconds) break;
        run_unit(u, std::min(o.unit_cases, total_cases - u * o.unit_cases));
      }
    } else {
      for (std::int64_t u = 0; since(t0) < o.budget.seconds; ++u)
        if (mine(u)) run_unit(u, o.unit_cases);
    }
  } catch (...) {
    set_rc_observer(nullptr);
    throw;
  }
  set_rc_observer(nullptr);
  res.seconds = since(t0);
  res.cases = done;
  if (o.progress) draw_progress(tty, done, my_total, res.seconds, o.budget.seconds, res.failures.size(), true);

  for (auto& [id, t] : tallies) {
    if (t.cases == 0) continue;
    CaseResult c;
    c.op = t.op;
    c.variant = t.kernel;
    c.layout = "all";
    c.profile = t.profile;
    c.shape = fmt::format("{} cases, {:.1f} cases/s", t.cases, t.seconds > 0 ? t.cases / t.seconds : 0.0);
    c.seconds = t.seconds;
    c.histogram = t.histogram;
    Comparison cmp;
    cmp.elements = t.cases;
    cmp.failures = t.failures;
    cmp.worst_ratio = t.worst_ratio;
    cmp.pass = t.failures == 0;
    if (t.failures) cmp.failure = fmt::format("{} failing runs", t.failures);
    c.outputs.push_back({"all properties", cmp});
    res.report_cases.push_back(std::move(c));
    res.kernels.push_back(t);
  }
  for (const auto& f : res.failures) {
    CaseResult c;
    c.op = f.op;
    c.variant = f.kernel;
    c.layout = "shrunk";
    c.profile = f.property;
    c.shape = f.shrunk_case.substr(0, 300);
    c.seed = f.seed;
    c.error = fmt::format("{}: {} (replay: RC_PARAMS='{}'{})", f.property, f.message, f.reproduce,
                          f.corpus_file.empty() ? "" : ", case " + f.corpus_file);
    res.report_cases.push_back(std::move(c));
  }

  if (!o.report_dir.empty()) {
    RunInfo info;
    info.command = o.command;
    info.build = build_info();
    info.device = o.device >= 0 ? fmt::format("GPU {} (CTest resource group) + CPU: {}", o.device, info.build.cpu_model)
                                : "CPU: " + info.build.cpu_model;
    info.seeds = res.seeds;
    info.started_utc = utc_now_iso8601();
    info.seconds = res.seconds;
    std::filesystem::create_directories(o.report_dir);
    const std::string stem = o.shard.total > 1 ? fmt::format("fuzz-shard{}of{}", o.shard.index, o.shard.total) : "fuzz";
    const std::string base = (std::filesystem::path(o.report_dir) / stem).string();
    write_markdown_report(base + ".md", info, res.report_cases);
    write_json_report(base + ".json", info, res.report_cases);
    write_junit_report(base + ".junit.xml", info, res.report_cases);
    std::ofstream md(base + ".md", std::ios::app);
    md << "\n## Throughput (cases per second, this process)\n\n" << throughput_table(res);
    if (!res.failures.empty()) {
      md << "\n## Counterexamples (shrunk)\n\n";
      for (const auto& f : res.failures)
        md << fmt::format("- `{}/{}` {}: {}\n  - case: {}\n  - replay: `dsa-oracle fuzz --kernel {}/{} --reproduce '{}'`{}\n",
                          f.op, f.kernel, f.property, f.message, f.shrunk_case, f.op, f.kernel, f.reproduce,
                          f.corpus_file.empty() ? "" : fmt::format("\n  - case file: `{}`", f.corpus_file));
    }
  }
  return res;
}

std::string throughput_table(const CampaignResult& r) {
  std::string s = "| op | kernel | profile | cases | failures | seconds | cases/s | worst error/budget |\n"
                  "|---|---|---|---:|---:|---:|---:|---:|\n";
  std::map<std::string, std::pair<std::int64_t, double>> per_op;
  for (const auto& t : r.kernels) {
    s += fmt::format("| {} | {} | {} | {} | {} | {:.1f} | {:.1f} | {:.3f} |\n", t.op, t.kernel, t.profile, t.cases,
                     t.failures, t.seconds, t.seconds > 0 ? t.cases / t.seconds : 0.0, t.worst_ratio);
    per_op[t.op].first += t.cases;
    per_op[t.op].second += t.seconds;
  }
  for (const auto& [op, cs] : per_op)
    s += fmt::format("| **{}** | all | | {} | | {:.1f} | **{:.1f}** | |\n", op, cs.first, cs.second,
                     cs.second > 0 ? cs.first / cs.second : 0.0);
  s += fmt::format("| **all** | | | {} | {} | {:.1f} (wall) | **{:.1f}** | |\n", r.cases, r.failures.size(), r.seconds,
                   r.seconds > 0 ? r.cases / r.seconds : 0.0);
  return s;
}

}  // namespace dsa::fuzz
