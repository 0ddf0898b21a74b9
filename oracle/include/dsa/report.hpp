// Tolerance reports: Markdown for people, JSON for machines, JUnit XML for CI dashboards. Every
// report states what ran, where, with which seeds and which build.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dsa/build_info.hpp"
#include "dsa/compare.hpp"

namespace dsa {

// One judged case: which op, variant (implementation), layout and profile; the case's shape and
// seed; the comparison of each judged output (out, lse, logits, ...).
struct CaseResult {
  std::string op;       // e.g. "sparse_mla_decode"
  std::string variant;  // e.g. "fast.fused", "cuda.fused"
  std::string layout;   // e.g. "V32", "preshuffle"
  std::string profile;  // conventions bundle, e.g. "default"
  std::string shape;    // human-readable shape, e.g. "B=2 S_q=1 H=16 topk=64"
  std::uint64_t seed = 0;
  struct Output {
    std::string name;
    Comparison cmp;
  };
  std::vector<Output> outputs;
  std::string error;      // a thrown error instead of a result (counts as a failure)
  double seconds = 0.0;
  RatioHistogram histogram;  // of every compared element's error / budget

  bool pass() const;
  double worst_ratio() const;
};

struct RunInfo {
  std::string command;               // what ran
  std::string device;                // CPU model, or GPU name
  std::vector<std::uint64_t> seeds;  // seeds of the cases
  BuildInfo build;
  std::string started_utc;           // ISO 8601
  double seconds = 0.0;
};

std::string utc_now_iso8601();

void write_markdown_report(const std::string& path, const RunInfo& info, const std::vector<CaseResult>& cases);
void write_json_report(const std::string& path, const RunInfo& info, const std::vector<CaseResult>& cases);
void write_junit_report(const std::string& path, const RunInfo& info, const std::vector<CaseResult>& cases);

// The Markdown summary table alone (op × variant × layout × profile → cases, failures, worst
// ratio), also printed by the CLI.
std::string summary_table(const std::vector<CaseResult>& cases);

}  // namespace dsa
