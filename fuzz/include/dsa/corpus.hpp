// The corpus of shrunk counterexamples (issue 6.4): a fuzz case as a case file (case_file.hpp:
// strict safetensors, every input tensor by name, parameters as JSON under metadata "dsa"), with
// what found it — kernel, property, failure, RapidCheck's reproduce string — and the replay of
// every file under data/corpus.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dsa/case_file.hpp"
#include "dsa/properties.hpp"

namespace dsa::fuzz {

// What a corpus file records besides the case.
struct CorpusMeta {
  std::string kernel;     // the kernel that failed ("op/name" resolves through kernel_by_name)
  std::string property;   // the property it failed
  std::string failure;    // the failure message
  std::string reproduce;  // RC_PARAMS value that replays the search ("reproduce=…"), if known
  std::uint64_t rc_seed = 0;
};

CaseFile to_case_file(const AnyCase& c, const CorpusMeta& meta);
AnyCase case_from_file(const CaseFile& f);  // throws CaseFileError naming the file and tensor
CorpusMeta corpus_meta(const CaseFile& f);

// Writes `c` under `dir` as "<op>-<kernel>-<property>-<hash>.safetensors" and returns the path.
std::string write_corpus_case(const std::string& dir, const AnyCase& c, const CorpusMeta& meta);

// The corpus directory of the source tree: $DSA_SOURCE_DIR/data/corpus, else data/corpus.
std::string default_corpus_dir();

// Replays one corpus file: every correct kernel of its op whose profile admits the case passes
// every property; if the recorded kernel is a registered mutant, it must still fail (so the case
// keeps its power to kill). Returns one line per problem; empty = the file replays clean.
struct ReplayResult {
  std::string path;
  Op op = Op::sparse_mla_decode;
  int kernels_run = 0;
  std::vector<std::string> problems;
};
ReplayResult replay_corpus_file(const std::string& path);

}  // namespace dsa::fuzz
