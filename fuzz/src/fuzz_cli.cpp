// `dsa-oracle fuzz` (campaigns) and `dsa-oracle selftest` (mutation self-test).
#include "dsa/fuzz_cli.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <random>
#include <sstream>

#include "dsa/campaign.hpp"
#include "dsa/corpus.hpp"
#include "dsa/error.hpp"

namespace dsa::fuzz {

namespace {

std::vector<std::uint64_t> parse_seeds(const std::string& text) {
  std::vector<std::uint64_t> seeds;
  if (text == "ci") return {std::begin(kCiSeeds), std::end(kCiSeeds)};
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "ci") {
      seeds.insert(seeds.end(), std::begin(kCiSeeds), std::end(kCiSeeds));
      continue;
    }
    try {
      std::size_t pos = 0;
      seeds.push_back(std::stoull(item, &pos));
      if (pos != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw InvalidArgument("--seeds", fmt::format("'{}' is not a seed (a comma-separated list of integers or 'ci')", item));
    }
  }
  if (seeds.empty()) throw InvalidArgument("--seeds", "is empty");
  return seeds;
}

class Commands : public FuzzCommands {
 public:
  explicit Commands(CLI::App& app) {
    fuzz_ = app.add_subcommand("fuzz", "Fuzz campaign: every kernel through every property; shrunk failures "
                                       "to the corpus; reports with throughput per op");
    fuzz_->add_option("--budget", budget_, "Cases (N) or seconds (Ns); a shard runs its share")->capture_default_str();
    seed_opt_ = fuzz_->add_option("--seed", seed_, "Campaign seed (default: fresh, printed)");
    fuzz_->add_option("--seeds", seeds_, "Comma-separated seed list, or 'ci' for the fixed CI list");
    fuzz_->add_option("--op", op_, "Only this op (sparse_mla_decode, sparse_mla_prefill, paged_mqa_logits, "
                                   "mqa_logits, topk)");
    fuzz_->add_option("--kernel", kernel_, "Only kernels whose op/name contains this");
    fuzz_->add_flag("--mutants", mutants_, "Fuzz the mutant catalog instead of the correct kernels");
    fuzz_->add_option("--unit-cases", unit_cases_, "Cases per RapidCheck run")->capture_default_str();
    fuzz_->add_flag("--no-shrink", no_shrink_, "Report failures unshrunk");
    fuzz_->add_option("--corpus-dir", corpus_dir_, "Where shrunk counterexamples go (default data/corpus; '' = none)");
    fuzz_->add_option("--report-dir", report_dir_, "Write fuzz.md/.json/.junit.xml here");
    fuzz_->add_option("--device", device_, "GPU device for GPU kernels (default: CTest resource group, else none)");
    fuzz_->add_option("--reproduce", reproduce_, "Replay one failure: the RC_PARAMS string a failure printed");
    fuzz_->add_flag("--no-progress", no_progress_, "No progress bar");
    fuzz_->add_option("--threads", threads_, "OpenMP threads per kernel call (shard for parallelism)")
        ->capture_default_str();

    self_ = app.add_subcommand("selftest", "Mutation self-test: every mutant of the catalog must be killed by a "
                                           "property within the budget");
    self_->add_option("--budget", self_budget_, "Cases per mutant within which it must die")->capture_default_str();
    self_->add_option("--seeds", self_seeds_, "Comma-separated seed list (default: the CI list)")->capture_default_str();
    self_->add_option("--mutant", mutant_, "Only mutants whose name contains this");
    self_->add_option("--report-dir", self_report_dir_, "Write selftest.md/.json/.junit.xml here");
    self_->add_flag("--no-progress", self_no_progress_, "No per-mutant lines on stderr");
    self_->add_option("--threads", threads_, "OpenMP threads per kernel call")->capture_default_str();
  }

  int run() override {
    if (*fuzz_) return run_fuzz();
    if (*self_) return run_self();
    return -1;
  }

 private:
  CLI::App* fuzz_ = nullptr;
  CLI::App* self_ = nullptr;
  CLI::Option* seed_opt_ = nullptr;
  std::string budget_ = "2000";
  std::uint64_t seed_ = 0;
  std::string seeds_, op_, kernel_, reproduce_;
  bool mutants_ = false, no_shrink_ = false, no_progress_ = false;
  std::int64_t unit_cases_ = 50;
  std::string corpus_dir_ = default_corpus_dir();
  std::string report_dir_;
  int device_ = -2;
  int threads_ = 1;
  std::int64_t self_budget_ = 1000;
  std::string self_seeds_ = "ci", mutant_, self_report_dir_;
  bool self_no_progress_ = false;

  int run_fuzz() {
    CampaignOptions o;
    o.budget = parse_budget(budget_);
    if (!seeds_.empty()) {
      o.seeds = parse_seeds(seeds_);
    } else {
      if (seed_opt_->count() == 0) seed_ = std::random_device{}() | 1u;
      o.seeds = {seed_};
    }
    o.op = op_;
    o.kernel = kernel_;
    o.mutants = mutants_;
    o.unit_cases = unit_cases_;
    o.shrink = !no_shrink_;
    o.corpus_dir = corpus_dir_;
    o.report_dir = report_dir_;
    o.shard = shard_from_environment();
    o.device = device_ >= -1 ? device_ : device_from_environment();
    o.progress = !no_progress_;
    o.reproduce = reproduce_;
    o.threads = threads_;
    o.command = fmt::format("dsa-oracle fuzz --budget {} --seeds {}{}{}{}", budget_, fmt::join(o.seeds, ","),
                            op_.empty() ? "" : " --op " + op_, kernel_.empty() ? "" : " --kernel " + kernel_,
                            mutants_ ? " --mutants" : "");
    const auto b = build_info();
    fmt::print("dsa-oracle {} ({}) fuzz on CPU: {} — budget {}, seeds {}, shard {} of {}, device {}\n", b.version,
               b.git_commit, b.cpu_model, budget_, fmt::join(o.seeds, ","), o.shard.index, o.shard.total, o.device);
    const CampaignResult r = run_campaign(o);
    fmt::print("\n{}\n", throughput_table(r));
    for (const auto& f : r.failures)
      fmt::print("FAIL {}/{} {}: {}\n  replay: dsa-oracle fuzz --kernel {}/{} --reproduce '{}'\n", f.op, f.kernel,
                 f.property, f.message, f.op, f.kernel, f.reproduce);
    if (!report_dir_.empty()) fmt::print("reports: {}/fuzz.md .json .junit.xml\n", report_dir_);
    fmt::print("{}: {} cases in {:.1f} s ({:.1f} cases/s), {} failure{}\n", r.failures.empty() ? "PASS" : "FAIL",
               r.cases, r.seconds, r.seconds > 0 ? r.cases / r.seconds : 0.0, r.failures.size(),
               r.failures.size() == 1 ? "" : "s");
    return r.failures.empty() ? 0 : 1;
  }

  int run_self() {
    SelftestOptions o;
    o.max_cases = self_budget_;
    o.seeds = parse_seeds(self_seeds_);
    o.mutant = mutant_;
    o.report_dir = self_report_dir_;
    o.progress = !self_no_progress_;
    o.threads = threads_;
    o.command = fmt::format("dsa-oracle selftest --budget {} --seeds {}", self_budget_, fmt::join(o.seeds, ","));
    fmt::print("dsa-oracle selftest — each mutant must be killed within {} cases (seeds {})\n", o.max_cases,
               fmt::join(o.seeds, ","));
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = run_selftest(o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("\n{}\n", kill_table(out));
    std::size_t survived = 0;
    for (const auto& r : out) survived += r.killed ? 0 : 1;
    fmt::print("{}: {} of {} mutants killed in {:.1f} s\n", survived ? "FAIL" : "PASS", out.size() - survived,
               out.size(), s);
    return survived ? 1 : 0;
  }
};

}  // namespace

std::unique_ptr<FuzzCommands> add_fuzz_commands(CLI::App& app) { return std::make_unique<Commands>(app); }

}  // namespace dsa::fuzz
