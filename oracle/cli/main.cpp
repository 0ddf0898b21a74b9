// dsa-oracle: the command-line front of the oracle. `run` is the main job of README.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "dsa/build_info.hpp"
#include "dsa/error.hpp"
#include "dsa/fuzz_cli.hpp"
#include "dsa/selfcheck.hpp"

namespace {

int cmd_run(std::int64_t cases, std::uint64_t seed, bool seed_given, const std::string& out_dir,
            const std::string& filter) {
  if (!seed_given) seed = std::random_device{}() | 1u;
  const auto info_build = dsa::build_info();
  dsa::RunInfo info;
  info.command = fmt::format("dsa-oracle run --cases {} --seed {}{}", cases, seed,
                             filter.empty() ? "" : " --filter " + filter);
  info.device = "CPU: " + info_build.cpu_model;
  info.build = info_build;
  info.started_utc = dsa::utc_now_iso8601();
  fmt::print("dsa-oracle {} ({}) self-check on {} — {} cases per check, seed {}\n", info_build.version,
             info_build.git_commit, info.device, cases, seed);
  const bool tty = isatty(fileno(stderr));
  dsa::SelfCheckOptions opt;
  opt.cases_per_check = cases;
  opt.seed = seed;
  opt.filter = filter;
  opt.progress = [tty](std::int64_t done, std::int64_t total) {
    if (!tty && done != total) return;
    const int width = 40;
    const int filled = total ? static_cast<int>(width * done / total) : width;
    fmt::print(stderr, "\r[{}{}] {}/{}", std::string(filled, '#'), std::string(width - filled, '.'), done, total);
    if (done == total) fmt::print(stderr, "\n");
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto results = dsa::run_selfchecks(opt, &info.seeds);
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::int64_t failed = 0;
  for (const auto& r : results) failed += r.pass() ? 0 : 1;
  fmt::print("\n{}\n", dsa::summary_table(results));
  if (results.empty()) {
    fmt::print(stderr, "dsa-oracle: no check matches --filter '{}'\n", filter);
    return 2;
  }
  std::filesystem::create_directories(out_dir);
  const std::string base = (std::filesystem::path(out_dir) / "selfcheck").string();
  dsa::write_markdown_report(base + ".md", info, results);
  dsa::write_json_report(base + ".json", info, results);
  dsa::write_junit_report(base + ".junit.xml", info, results);
  fmt::print("reports: {0}.md {0}.json {0}.junit.xml\n", base);
  fmt::print("{}: {} cases, {} failed ({:.1f} s)\n", failed ? "FAIL" : "PASS", results.size(), failed, info.seconds);
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dsa-oracle — correctness oracle for DeepSeek Sparse Attention kernels"};
  app.require_subcommand(1);

  auto* run = app.add_subcommand("run", "Self-check every available variant against the gold oracle; write reports");
  std::int64_t cases = 20;
  std::uint64_t seed = 0;
  std::string out_dir = "dsa-reports";
  std::string filter;
  run->add_option("--cases", cases, "Cases per check")->check(CLI::Range(1, 1000000));
  auto* seed_opt = run->add_option("--seed", seed, "Seed of the run (default: fresh, printed)");
  run->add_option("--out", out_dir, "Folder for the reports");
  run->add_option("--filter", filter, "Only checks whose op/variant/layout/profile contains this");

  auto* version = app.add_subcommand("version", "Print the build");
  auto fuzz_commands = dsa::fuzz::add_fuzz_commands(app);  // fuzz, selftest: fuzz/src/fuzz_cli.cpp

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (const int rc = fuzz_commands->run(); rc >= 0) return rc;
    if (*run) return cmd_run(cases, seed, seed_opt->count() > 0, out_dir, filter);
    if (*version) {
      const auto b = dsa::build_info();
      fmt::print("dsa-oracle {} ({}) {} {}\n", b.version, b.git_commit, b.compiler, b.build_type);
      return 0;
    }
  } catch (const dsa::InvalidArgument& e) {
    fmt::print(stderr, "dsa-oracle: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dsa-oracle: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
