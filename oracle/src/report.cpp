// Report writers (Markdown, JSON, JUnit XML).
#include "dsa/report.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "dsa/error.hpp"

namespace dsa {

bool CaseResult::pass() const {
  if (!error.empty()) return false;
  for (const auto& o : outputs)
    if (!o.cmp.pass) return false;
  return true;
}

double CaseResult::worst_ratio() const {
  double r = 0.0;
  for (const auto& o : outputs) r = std::max(r, o.cmp.worst_ratio);
  return error.empty() ? r : INFINITY;
}

std::string utc_now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

std::ofstream open_out(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw InvalidArgument("report path", fmt::format("cannot open '{}' for writing", path));
  return out;
}

using GroupKey = std::tuple<std::string, std::string, std::string, std::string>;
struct Group {
  std::int64_t cases = 0, failures = 0;
  double worst = 0.0;
  std::string worst_case;
  RatioHistogram hist;
  double seconds = 0.0;
};

std::map<GroupKey, Group> group(const std::vector<CaseResult>& cases) {
  std::map<GroupKey, Group> groups;
  for (const auto& c : cases) {
    auto& g = groups[{c.op, c.variant, c.layout, c.profile}];
    ++g.cases;
    g.seconds += c.seconds;
    if (!c.pass()) ++g.failures;
    const double r = c.worst_ratio();
    if (r >= g.worst || g.worst_case.empty()) {
      if (r >= g.worst) g.worst = r;
      std::string where;
      for (const auto& o : c.outputs)
        if (o.cmp.worst_ratio == r) where = o.name + o.cmp.worst_coordinate;
      g.worst_case = fmt::format("{} seed={} {}", c.shape, c.seed, c.error.empty() ? where : c.error);
    }
    g.hist.merge(c.histogram);
  }
  return groups;
}

std::string fmt_ratio(double r) { return std::isfinite(r) ? fmt::format("{:.3f}", r) : "inf"; }

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += ch;
    }
  }
  return o;
}

std::string case_name(const CaseResult& c) {
  return fmt::format("{}/{}/{}/{} {} seed={}", c.op, c.variant, c.layout, c.profile, c.shape, c.seed);
}

std::string failure_text(const CaseResult& c) {
  if (!c.error.empty()) return c.error;
  for (const auto& o : c.outputs)
    if (!o.cmp.pass) return o.name + ": " + o.cmp.failure;
  return "";
}

}  // namespace

std::string summary_table(const std::vector<CaseResult>& cases) {
  std::string s = "| op | variant | layout | profile | cases | failed | worst error/budget | worst case |\n"
                  "|---|---|---|---|---:|---:|---:|---|\n";
  for (const auto& [k, g] : group(cases)) {
    const auto& [op, variant, layout, profile] = k;
    s += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", op, variant, layout, profile, g.cases, g.failures,
                     fmt_ratio(g.worst), g.worst_case);
  }
  return s;
}

void write_markdown_report(const std::string& path, const RunInfo& info, const std::vector<CaseResult>& cases) {
  auto out = open_out(path);
  std::int64_t failed = 0;
  for (const auto& c : cases) failed += c.pass() ? 0 : 1;
  out << "# dsa-oracle report\n\n";
  out << fmt::format("- command: `{}`\n- started: {} ({:.1f} s)\n- device: {}\n- build: dsa-oracle {} ({}), {}, {}\n",
                     info.command, info.started_utc, info.seconds, info.device, info.build.version,
                     info.build.git_commit, info.build.compiler, info.build.build_type);
  out << fmt::format("- host: {} ({} hardware threads)\n", info.build.cpu_model, info.build.hardware_threads);
  std::string seeds;
  for (std::size_t i = 0; i < info.seeds.size() && i < 16; ++i) seeds += (i ? ", " : "") + std::to_string(info.seeds[i]);
  if (info.seeds.size() > 16) seeds += fmt::format(", … ({} in all)", info.seeds.size());
  out << fmt::format("- seeds: {}\n- verdict: **{}** — {} cases, {} failed\n\n", seeds, failed ? "FAIL" : "PASS",
                     cases.size(), failed);
  out << "## Summary (op × variant × layout × profile)\n\n" << summary_table(cases) << "\n";
  out << "## Distribution of error / budget over every compared element\n\n| group |";
  for (int b = 0; b < RatioHistogram::kBuckets; ++b) out << " " << RatioHistogram::label(b) << " |";
  out << "\n|---|";
  for (int b = 0; b < RatioHistogram::kBuckets; ++b) out << "---:|";
  out << "\n";
  for (const auto& [k, g] : group(cases)) {
    out << fmt::format("| {}/{}/{}/{} |", std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k));
    for (int b = 0; b < RatioHistogram::kBuckets; ++b) out << " " << g.hist.counts[b] << " |";
    out << "\n";
  }
  if (failed) {
    out << "\n## Failures\n\n";
    for (const auto& c : cases)
      if (!c.pass()) out << "- " << case_name(c) << ": " << failure_text(c) << "\n";
  }
}

void write_json_report(const std::string& path, const RunInfo& info, const std::vector<CaseResult>& cases) {
  using nlohmann::json;
  json j;
  j["command"] = info.command;
  j["started_utc"] = info.started_utc;
  j["seconds"] = info.seconds;
  j["device"] = info.device;
  j["build"] = {{"version", info.build.version}, {"git_commit", info.build.git_commit},
                {"compiler", info.build.compiler}, {"build_type", info.build.build_type},
                {"cpu_model", info.build.cpu_model}, {"hardware_threads", info.build.hardware_threads}};
  j["seeds"] = info.seeds;
  auto num = [](double x) -> json { return std::isfinite(x) ? json(x) : json(x > 0 ? "inf" : (x < 0 ? "-inf" : "nan")); };
  json arr = json::array();
  for (const auto& c : cases) {
    json jc = {{"op", c.op}, {"variant", c.variant}, {"layout", c.layout}, {"profile", c.profile},
               {"shape", c.shape}, {"seed", c.seed}, {"pass", c.pass()}, {"worst_ratio", num(c.worst_ratio())},
               {"seconds", c.seconds}};
    if (!c.error.empty()) jc["error"] = c.error;
    json outs = json::array();
    for (const auto& o : c.outputs) {
      const auto& m = o.cmp;
      outs.push_back({{"name", o.name}, {"pass", m.pass}, {"failure", m.failure}, {"elements", m.elements},
                      {"failures", m.failures}, {"worst_ratio", num(m.worst_ratio)},
                      {"worst_coordinate", m.worst_coordinate}, {"worst_got", num(m.worst_got)},
                      {"worst_want", num(m.worst_want)}, {"worst_budget", num(m.worst_budget)},
                      {"max_abs", num(m.max_abs)}, {"max_rel", num(m.max_rel)}, {"max_bf16_ulp", num(m.max_bf16_ulp)},
                      {"cos_diff", num(m.cos_diff)}, {"unwritten", m.unwritten},
                      {"nonfinite_mismatches", m.nonfinite_mismatches}});
    }
    jc["outputs"] = outs;
    arr.push_back(jc);
  }
  j["cases"] = arr;
  open_out(path) << j.dump(1) << "\n";
}

void write_junit_report(const std::string& path, const RunInfo& info, const std::vector<CaseResult>& cases) {
  auto out = open_out(path);
  std::int64_t failed = 0;
  double total = 0;
  for (const auto& c : cases) {
    failed += c.pass() ? 0 : 1;
    total += c.seconds;
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << fmt::format("<testsuites name=\"dsa-oracle\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n", cases.size(),
                     failed, total);
  out << fmt::format("<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" timestamp=\"{}\" hostname=\"{}\">\n",
                     xml_escape(info.command), cases.size(), failed, info.started_utc, xml_escape(info.device));
  out << fmt::format("<properties><property name=\"build\" value=\"{} {} {}\"/></properties>\n",
                     xml_escape(info.build.version), xml_escape(info.build.git_commit), xml_escape(info.build.compiler));
  for (const auto& c : cases) {
    out << fmt::format("<testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.4f}\">", xml_escape(c.op),
                       xml_escape(c.variant), xml_escape(case_name(c)), c.seconds);
    if (!c.pass()) out << fmt::format("<failure message=\"{}\"/>", xml_escape(failure_text(c)));
    out << "</testcase>\n";
  }
  out << "</testsuite>\n</testsuites>\n";
}

}  // namespace dsa
