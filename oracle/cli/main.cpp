// dsa-oracle: the command-line front of the oracle — `run` (self-check every variant against
// gold), `make-case` (write a random case file), `check` (judge a kernel's outputs in a case
// file), `version`. Exit codes: 0 pass, 1 fail, 2 bad arguments or bad input (one line on stderr).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <new>
#include <random>

#include "dsa/build_info.hpp"
#include "dsa/case_file.hpp"
#include "dsa/error.hpp"
#include "dsa/fuzz_cli.hpp"
#include "dsa/op_cases.hpp"
#include "dsa/selfcheck.hpp"

namespace {

dsa::RunInfo run_info(std::string command) {
  const auto b = dsa::build_info();
  dsa::RunInfo info;
  info.command = std::move(command);
  info.device = "CPU: " + b.cpu_model;
  info.build = b;
  info.started_utc = dsa::utc_now_iso8601();
  return info;
}

void write_reports(const std::string& dir, const std::string& stem, const dsa::RunInfo& info,
                   const std::vector<dsa::CaseResult>& results) {
  std::filesystem::create_directories(dir);
  const std::string base = (std::filesystem::path(dir) / stem).string();
  dsa::write_markdown_report(base + ".md", info, results);
  dsa::write_json_report(base + ".json", info, results);
  dsa::write_junit_report(base + ".junit.xml", info, results);
  fmt::print("reports: {0}.md {0}.json {0}.junit.xml\n", base);
}

int cmd_run(std::int64_t cases, std::uint64_t seed, bool seed_given, const std::string& out_dir,
            const std::string& filter) {
  if (!seed_given) seed = std::random_device{}() | 1u;
  dsa::RunInfo info = run_info(fmt::format("dsa-oracle run --cases {} --seed {}{}", cases, seed,
                                           filter.empty() ? "" : " --filter " + filter));
  fmt::print("dsa-oracle {} ({}) self-check on {} — {} cases per check, seed {}\n", info.build.version,
             info.build.git_commit, info.device, cases, seed);
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
  if (results.empty()) {
    fmt::print(stderr, "dsa-oracle: no check matches --filter '{}'\n", filter);
    return 2;
  }
  fmt::print("\n{}\n", dsa::summary_table(results));
  write_reports(out_dir, "selfcheck", info, results);
  fmt::print("{}: {} cases, {} failed ({:.1f} s)\n", failed ? "FAIL" : "PASS", results.size(), failed, info.seconds);
  return failed ? 1 : 0;
}

// ---- make-case ----------------------------------------------------------------------------------
struct MakeCaseArgs {
  std::string op, output, precision, write_contract;
  bool gold_outputs = false, fast_outputs = false, gold_tensors = false, no_poison = false;
  std::string extra, lengths;  // "yes" / "no" / "" (random)
  dsa::RandomCaseSpec spec;
};

int cmd_make_case(const MakeCaseArgs& a, const std::string& command) {
  const auto op = dsa::op_from_string(a.op);
  if (!op) throw dsa::InvalidArgument("--op", fmt::format("unknown op '{}' (known: sparse_mla_decode, sparse_mla_prefill, "
                                                          "paged_mqa_logits, mqa_logits, topk)", a.op));
  if (a.gold_outputs && a.fast_outputs)
    throw dsa::InvalidArgument("--with-gold-outputs", "and --with-fast-outputs exclude each other");
  dsa::RandomCaseSpec spec = a.spec;
  auto yes_no = [](const std::string& v, const char* name) -> std::optional<bool> {
    if (v.empty()) return std::nullopt;
    if (v == "yes") return true;
    if (v == "no") return false;
    throw dsa::InvalidArgument(name, fmt::format("must be yes or no (got '{}')", v));
  };
  spec.extra = yes_no(a.extra, "--extra");
  spec.lengths = yes_no(a.lengths, "--lengths");
  spec.poison = !a.no_poison;
  const std::string outputs = a.gold_outputs ? "gold" : a.fast_outputs ? "fast" : "none";
  dsa::CaseFile f = dsa::make_case_file(*op, spec, outputs, a.gold_tensors);
  nlohmann::json p = f.params();
  if (!a.precision.empty()) {
    (void)dsa::kernel_precision(a.precision, *op);  // an unknown preset is an error here, not at check time
    p["precision"] = a.precision;
  }
  if (!a.write_contract.empty()) p["write_contract"] = a.write_contract;
  p["made_by"] = command;
  f.set_params(p);
  (void)dsa::judge_options_from_json(p, *op);
  dsa::write_case_file(a.output, f);
  std::int64_t bytes = 0;
  for (const auto& t : f.tensors) bytes += static_cast<std::int64_t>(t.bytes.size());
  fmt::print("wrote {}: {} seed {}, {} tensors ({} bytes){}\n", a.output, a.op, spec.seed, f.tensors.size(), bytes,
             outputs == "none" ? "" : fmt::format(", {} outputs", outputs));
  return 0;
}

// ---- check -----------------------------------------------------------------------------------------
struct CheckArgs {
  std::string case_path, outputs_path, report_dir = "dsa-reports", precision, write_contract;
  int num_splits = -1, tile_slots = -1;
  std::int64_t contract_page_tokens = -1;
};

std::string output_line(const dsa::CaseResult::Output& o) {
  const auto& c = o.cmp;
  std::string line = fmt::format("{:<11} {} worst error/budget {:.4g}", o.name, c.pass ? "PASS" : "FAIL", c.worst_ratio);
  if (!c.worst_coordinate.empty())
    line += fmt::format(" at {} (got {:.9g} want {:.9g} budget {:.3g})", c.worst_coordinate, c.worst_got, c.worst_want,
                        c.worst_budget);
  line += fmt::format(" | max_abs {:.3g} max_rel {:.3g} bf16_ulp {:g} cos_diff {:.3g} | {} elements", c.max_abs, c.max_rel,
                      c.max_bf16_ulp, c.cos_diff, c.elements);
  if (!c.pass)
    line += fmt::format("\n            {} failing ({} non-finite mismatches, {} unwritten); first: {}", c.failures,
                        c.nonfinite_mismatches, c.unwritten, c.failure);
  return line;
}

int cmd_check(const CheckArgs& a, const std::string& command) {
  const dsa::CaseFile in = dsa::read_case_file(a.case_path);
  std::optional<dsa::CaseFile> outs;
  if (!a.outputs_path.empty()) outs = dsa::read_case_file(a.outputs_path);
  nlohmann::json overrides = nlohmann::json::object();
  if (!a.precision.empty()) overrides["precision"] = a.precision;
  if (a.num_splits >= 0) overrides["claims"]["num_splits"] = a.num_splits;
  if (a.tile_slots >= 0) overrides["claims"]["tile_slots"] = a.tile_slots;
  if (!a.write_contract.empty()) overrides["write_contract"] = a.write_contract;
  if (a.contract_page_tokens >= 0) overrides["contract_page_tokens"] = a.contract_page_tokens;
  dsa::RunInfo info = run_info(command);
  const auto t0 = std::chrono::steady_clock::now();
  dsa::CaseResult r = dsa::check_case(in, outs ? &*outs : nullptr, overrides);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  info.seconds = r.seconds;
  info.seeds = {r.seed};
  fmt::print("{} {} [{}] {}\n", a.case_path, r.op, r.layout, r.shape);
  for (const auto& o : r.outputs) fmt::print("  {}\n", output_line(o));
  write_reports(a.report_dir, "check", info, {r});
  fmt::print("{}: {} (worst error/budget {:.4g})\n", r.pass() ? "PASS" : "FAIL", a.case_path, r.worst_ratio());
  return r.pass() ? 0 : 1;
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

  auto* make = app.add_subcommand("make-case", "Write a random case file (inputs, optionally outputs) of one op");
  MakeCaseArgs mk;
  make->add_option("--op", mk.op, "sparse_mla_decode | sparse_mla_prefill | paged_mqa_logits | mqa_logits | topk")
      ->required();
  make->add_option("-o,--output", mk.output, "Case file to write (.safetensors)")->required();
  make->add_option("--seed", mk.spec.seed, "Seed of the case (every unset knob is drawn from it)");
  make->add_flag("--with-gold-outputs", mk.gold_outputs, "Add gold outputs rounded like a kernel's (check passes)");
  make->add_flag("--with-fast-outputs", mk.fast_outputs, "Add the CPU fast path's outputs");
  make->add_flag("--gold-tensors", mk.gold_tensors, "Add the fp64 gold outputs as gold.<name>");
  make->add_flag("--no-poison", mk.no_poison, "Leave unselected cache tokens as data instead of NaN codes");
  auto opt_str = [&](const char* name, std::optional<std::string>& field, const char* help) {
    make->add_option_function<std::string>(name, [&field](const std::string& v) { field = v; }, help);
  };
  auto opt_int = [&](const char* name, std::optional<std::int64_t>& field, const char* help) {
    make->add_option_function<std::int64_t>(name, [&field](const std::int64_t& v) { field = v; }, help)
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30));
  };
  opt_str("--layout", mk.spec.layout, "V32 | MODEL1 | MODEL1_SPLIT | BF16 | BF16-512 (MLA); standard | preshuffle (index K)");
  opt_str("--fp8", mk.spec.fp8, "e4m3fn | e4m3fnuz");
  opt_int("--B", mk.spec.B, "Batch");
  opt_int("--S-q", mk.spec.S_q, "Query rows per sequence (decode S_q, prefill S_q, mqa_logits S)");
  opt_int("--H", mk.spec.H, "Query heads");
  opt_int("--topk", mk.spec.topk, "Selected slots per row (sparse MLA)");
  opt_int("--page-tokens", mk.spec.page_tokens, "Page size P");
  opt_int("--num-blocks", mk.spec.num_blocks, "Blocks in the cache pool");
  opt_int("--next-n", mk.spec.next_n, "paged_mqa_logits: query rows per sequence");
  opt_int("--head-dim", mk.spec.head_dim, "Indexer head dim D");
  opt_int("--max-ctx", mk.spec.max_ctx, "paged_mqa_logits: logits width");
  opt_int("--S-kv", mk.spec.S_kv, "Keys (prefill kv rows, mqa_logits S_kv)");
  opt_int("--rows", mk.spec.rows, "topk: rows");
  opt_int("--width", mk.spec.width, "topk: positions per row");
  opt_int("--k", mk.spec.k, "topk: k");
  opt_str("--index-mode", mk.spec.index_mode, "physical | logical");
  make->add_option("--extra", mk.extra, "decode: an extra cache (yes | no)");
  make->add_option("--lengths", mk.lengths, "topk_length given (yes | no)");
  opt_str("--sink", mk.spec.sink, "none | finite | inf");
  opt_str("--reader", mk.spec.reader, "staged_bf16 | flashmla_sm90 | flashmla_sm100 | exact_fp32");
  opt_str("--conventions", mk.spec.conventions, "flashmla | xkernels | flashmla_prefill_2025");
  opt_str("--scale-policy", mk.spec.scale_policy, "pow2_ceil | fp32");
  opt_str("--k-scale-at", mk.spec.k_scale_at, "after_head_sum | per_head | on_k_bf16");
  opt_str("--context-lens", mk.spec.context_lens, "per_sequence | per_row");
  make->add_option("--precision", mk.precision, "Precision the kernel promises, recorded in the case (bf16p | fp32p | fp8p | fp32p-rn)");
  make->add_option("--write-contract", mk.write_contract, "Logits write contract recorded in the case (all | visible | ceil_page)");

  auto* check = app.add_subcommand("check", "Judge the kernel outputs of a case file; write reports");
  CheckArgs ck;
  check->add_option("case", ck.case_path, "Case file (.safetensors)")->required();
  check->add_option("--outputs", ck.outputs_path, "The kernel's outputs, if not in the case file");
  check->add_option("--report-dir", ck.report_dir, "Folder for the reports (check.md, check.json, check.junit.xml)");
  check->add_option("--precision", ck.precision, "Override the promised precision (bf16p | fp32p | fp8p | fp32p-rn)");
  check->add_option("--num-splits", ck.num_splits, "Split-KV chunks the kernel used (0 = unknown: worst case)")
      ->check(CLI::Range(0, 1000000));
  check->add_option("--tile-slots", ck.tile_slots, "Keys per online-softmax tile (0 = unknown: worst case)")
      ->check(CLI::Range(0, 1000000));
  check->add_option("--write-contract", ck.write_contract, "Logits write contract (all | visible | ceil_page)");
  check->add_option("--contract-page-tokens", ck.contract_page_tokens, "Page of the ceil_page contract")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30));

  auto* version = app.add_subcommand("version", "Print the build");
  auto fuzz_commands = dsa::fuzz::add_fuzz_commands(app);  // fuzz, selftest: fuzz/src/fuzz_cli.cpp

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "dsa-oracle: {} (run with --help)\n", e.what());
    return 2;
  }
  std::string command = "dsa-oracle";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  try {
    if (const int rc = fuzz_commands->run(); rc >= 0) return rc;
    if (*run) return cmd_run(cases, seed, seed_opt->count() > 0, out_dir, filter);
    if (*make) return cmd_make_case(mk, command);
    if (*check) return cmd_check(ck, command);
    if (*version) {
      const auto b = dsa::build_info();
      fmt::print("dsa-oracle {} ({}) {} {}\n", b.version, b.git_commit, b.compiler, b.build_type);
      return 0;
    }
  } catch (const dsa::InvalidArgument& e) {
    fmt::print(stderr, "dsa-oracle: {}\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "dsa-oracle: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dsa-oracle: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
