// The dsa-oracle binary end to end: make-case → check passes; one tampered element, a NaN or a
// sentinel left in place → exit 1 with the coordinate named; a corrupt file or bad arguments →
// exit 2 with one line. The binary is $DSA_ORACLE_EXE, else <build>/oracle/dsa-oracle next to
// this test's <build>/tests/ folder (build the `dsa-oracle` target before running this test).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dsa/case_file.hpp"
#include "dsa/formats.hpp"
#include "dsa/judge.hpp"

namespace {

namespace fs = std::filesystem;

std::string oracle_exe() {
  if (const char* e = std::getenv("DSA_ORACLE_EXE")) return e;
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "oracle" / "dsa-oracle").string();
}

struct Exec {
  int rc = -1;
  std::string out;  // stdout and stderr together
  int lines() const {
    int n = 0;
    for (char c : out) n += c == '\n';
    return n;
  }
};

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dsa_cli_test_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    ASSERT_TRUE(fs::exists(oracle_exe())) << "dsa-oracle not found at " << oracle_exe()
                                          << " (build the dsa-oracle target or set DSA_ORACLE_EXE)";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  Exec run(const std::string& args) const {
    const std::string log = path("log.txt");
    const std::string cmd = "'" + oracle_exe() + "' " + args + " > '" + log + "' 2>&1";
    const int status = std::system(cmd.c_str());
    Exec r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    r.out = ss.str();
    return r;
  }

  // make-case with gold outputs; returns the case path.
  std::string make(const std::string& op, const std::string& extra = "", int seed = 3) const {
    const std::string p = path(op + ".safetensors");
    const Exec r = run("make-case --op " + op + " --seed " + std::to_string(seed) + " --with-gold-outputs " + extra +
                       " -o '" + p + "'");
    EXPECT_EQ(r.rc, 0) << r.out;
    return p;
  }

  fs::path dir_;
};

TEST_F(Cli, MakeCaseThenCheckPassesForEveryOp) {
  for (const char* op : {"sparse_mla_decode", "sparse_mla_prefill", "paged_mqa_logits", "mqa_logits", "topk"}) {
    const std::string p = make(op);
    const Exec r = run("check '" + p + "' --report-dir '" + path("reports") + "'");
    EXPECT_EQ(r.rc, 0) << op << "\n" << r.out;
    EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("worst error/budget"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(path("reports/check.md")));
    EXPECT_TRUE(fs::exists(path("reports/check.json")));
    EXPECT_TRUE(fs::exists(path("reports/check.junit.xml")));
  }
}

TEST_F(Cli, TamperedOutElementFailsAndIsNamed) {
  const std::string p = make("sparse_mla_decode", "--B 2 --S-q 1 --H 4 --topk 48 --sink none --lengths no");
  dsa::CaseFile f = dsa::read_case_file(p);
  const auto gold = f.get<std::uint16_t>("out", dsa::DType::BF16);
  // Element [b=1,s=0,h=2,d=100] moved by 1/8 of itself plus 1: far past any budget.
  const std::int64_t i = ((1 * 1 + 0) * 4 + 2) * 512 + 100;
  std::vector<std::uint16_t> out = gold;
  out[static_cast<std::size_t>(i)] = dsa::f32_to_bf16(dsa::bf16_to_f32(gold[static_cast<std::size_t>(i)]) * 1.125f + 1.0f);
  auto& t = f.at("out");
  std::memcpy(t.bytes.data(), out.data(), t.bytes.size());
  dsa::write_case_file(path("tampered.safetensors"), f);
  const Exec r = run("check '" + path("tampered.safetensors") + "' --report-dir '" + path("reports") + "'");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("[b=1,s=0,h=2,d=100]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exceeds budget"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 failing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL"), std::string::npos) << r.out;
  // The JUnit report records the failure for CI.
  std::ifstream junit(path("reports/check.junit.xml"));
  std::stringstream ss;
  ss << junit.rdbuf();
  EXPECT_NE(ss.str().find("failure"), std::string::npos);
}

TEST_F(Cli, NaNAndSentinelInLogitsFailWithTheirRules) {
  // A case with a visible position (a random context length may be 0).
  dsa::CaseFile f;
  std::vector<float> logits;
  std::size_t vis = 0;
  for (int seed = 3;; ++seed) {
    ASSERT_LT(seed, 40) << "no case with a visible position";
    f = dsa::read_case_file(make("paged_mqa_logits", "--B 1 --next-n 1 --max-ctx 40 --context-lens per_row", seed));
    logits = f.get<float>("logits");
    for (vis = 0; vis < logits.size() && !std::isfinite(logits[vis]); ++vis) {
    }
    if (vis < logits.size()) break;
  }
  logits[vis] = std::numeric_limits<float>::quiet_NaN();
  auto& t = f.at("logits");
  std::memcpy(t.bytes.data(), logits.data(), t.bytes.size());
  dsa::write_case_file(path("nan.safetensors"), f);
  Exec r = run("check '" + path("nan.safetensors") + "' --report-dir '" + path("reports") + "'");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("non-finite mismatch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[b=0,n=0,t=" + std::to_string(vis) + "]"), std::string::npos) << r.out;

  logits[vis] = dsa::f32_from_bits(dsa::kSentinelF32);  // left unwritten
  std::memcpy(t.bytes.data(), logits.data(), t.bytes.size());
  dsa::write_case_file(path("sentinel.safetensors"), f);
  r = run("check '" + path("sentinel.safetensors") + "' --report-dir '" + path("reports") + "'");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("unwritten"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[b=0,n=0,t=" + std::to_string(vis) + "]"), std::string::npos) << r.out;
}

TEST_F(Cli, OutputsFromASeparateFile) {
  const std::string p = make("mqa_logits");
  dsa::CaseFile f = dsa::read_case_file(p);
  dsa::CaseFile outs;
  outs.add(f.at("logits"));
  dsa::write_case_file(path("outs.safetensors"), outs);
  const Exec r = run("check '" + p + "' --outputs '" + path("outs.safetensors") + "' --report-dir '" + path("reports") + "'");
  EXPECT_EQ(r.rc, 0) << r.out;
}

TEST_F(Cli, CorruptFileIsOneLineAndExitTwo) {
  const std::string p = make("topk");
  std::ifstream in(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(path("corrupt.safetensors"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  Exec r = run("check '" + path("corrupt.safetensors") + "'");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.lines(), 1) << r.out;
  EXPECT_NE(r.out.find("corrupt.safetensors"), std::string::npos) << r.out;
  std::ofstream(path("garbage.safetensors"), std::ios::binary) << "not a safetensors file at all";
  r = run("check '" + path("garbage.safetensors") + "'");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.lines(), 1) << r.out;
  r = run("check '" + path("missing.safetensors") + "'");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.lines(), 1) << r.out;
}

TEST_F(Cli, BadArgumentsAreOneLineAndExitTwo) {
  for (const std::string& args : std::vector<std::string>{"", "bogus", "make-case --op nope -o x.safetensors", "make-case --op topk",
                                  "make-case --op sparse_mla_decode --layout V99 -o '" + path("x.safetensors") + "'",
                                  "check", "check a.safetensors --num-splits -3",
                                  "run --cases 0"}) {
    const Exec r = run(args);
    EXPECT_EQ(r.rc, 2) << args << "\n" << r.out;
    EXPECT_EQ(r.lines(), 1) << args << "\n" << r.out;
  }
  const std::string p = make("topk");
  const Exec r = run("check '" + p + "' --precision fp9 --report-dir '" + path("reports") + "'");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(r.lines(), 1) << r.out;
  EXPECT_NE(r.out.find("precision"), std::string::npos) << r.out;
}

TEST_F(Cli, RunStillWorks) {
  const Exec r = run("run --cases 1 --seed 5 --filter sparse_mla_decode/fast.split/V32 --out '" + path("reports") + "'");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("PASS: 1 cases"), std::string::npos) << r.out;
}

}  // namespace
