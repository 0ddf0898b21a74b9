// Every shrunk counterexample under data/corpus is replayed forever after (issue 6.4): each
// correct kernel of its op passes every property on it, and a mutant that produced it still
// fails. The corpus directory must exist; with no files the test still runs and says so. Also:
// a case written as a case file and read back is the same case (every op).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <rapidcheck.h>

#include "dsa/corpus.hpp"
#include "dsa/generators.hpp"

using namespace dsa;
using namespace dsa::fuzz;
namespace fs = std::filesystem;

TEST(CorpusReplay, EveryCorpusFileReplaysClean) {
  const char* src = std::getenv("DSA_SOURCE_DIR");
  ASSERT_TRUE(src && *src) << "DSA_SOURCE_DIR is not set (CTest sets it to the source tree)";
  const fs::path dir = fs::path(src) / "data" / "corpus";
  ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing: the corpus directory must exist";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::printf("corpus: %zu case file%s in %s\n", files.size(), files.size() == 1 ? "" : "s", dir.c_str());
  for (const auto& f : files) {
    const ReplayResult r = replay_corpus_file(f.string());
    EXPECT_GT(r.kernels_run, 0) << f << ": no kernel of " << to_string(r.op) << " admits this case";
    for (const auto& p : r.problems) ADD_FAILURE() << p;
    std::printf("  %s: %s, %d kernel%s, %s\n", f.filename().c_str(), to_string(r.op), r.kernels_run,
                r.kernels_run == 1 ? "" : "s", r.problems.empty() ? "clean" : "PROBLEMS");
  }
}

namespace {

template <class Spec>
void round_trip(const rc::Gen<Spec>& g, int n) {
  for (int i = 0; i < n; ++i) {
    const AnyCase c = build(g(rc::Random(static_cast<std::uint64_t>(i) + 11), 100).value());
    const CorpusMeta meta{"k", "budget", "why", "reproduce=xyz", 7};
    const CaseFile f = parse_case_file(serialize_case_file(to_case_file(c, meta)), "round-trip");
    const AnyCase back = case_from_file(f);
    // describe() prints every index, table, length and shape; the bytes are compared below.
    EXPECT_EQ(describe(back), describe(c));
    EXPECT_EQ(serialize_case_file(to_case_file(back, meta)), serialize_case_file(to_case_file(c, meta)));
    const CorpusMeta m = corpus_meta(f);
    EXPECT_EQ(m.kernel, "k");
    EXPECT_EQ(m.reproduce, "reproduce=xyz");
  }
}

}  // namespace

TEST(CorpusFiles, EveryOpRoundTripsThroughACaseFile) {
  round_trip(gen_decode_spec(kernel_by_name("sparse_mla_decode/fast.fused")), 20);
  round_trip(gen_prefill_spec(kernel_by_name("sparse_mla_prefill/fast.fused")), 10);
  round_trip(gen_paged_logits_spec(kernel_by_name("paged_mqa_logits/fast")), 10);
  round_trip(gen_mqa_logits_spec(kernel_by_name("mqa_logits/fast")), 10);
  round_trip(gen_topk_spec(kernel_by_name("topk/reference")), 10);
}

TEST(CorpusFiles, AMalformedCaseNamesTheProblem) {
  const AnyCase c = build(gen_topk_spec(kernel_by_name("topk/reference"))(rc::Random(3), 100).value());
  CaseFile f = to_case_file(c, {});
  auto p = f.params();
  p["k"] = 0;  // top-k of zero positions: not a case
  f.set_params(p);
  f.source = "bad.safetensors";
  try {
    case_from_file(f);
    FAIL() << "a case with k = 0 was accepted";
  } catch (const CaseFileError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
  }
}
