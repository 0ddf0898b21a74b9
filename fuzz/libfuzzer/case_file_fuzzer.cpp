// libFuzzer target for the case-file reader (issue 5.6): any byte string either parses or throws
// dsa::CaseFileError. A file that parses must also write, re-read to the same case, and write to
// the same bytes again; its parameters and a schema check may throw CaseFileError, nothing else.
// Built and run by tools/run-parser-fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "dsa/case_file.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "case_file_fuzzer: %s\n", what);
  std::abort();
}

bool same_case(const dsa::CaseFile& a, const dsa::CaseFile& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const dsa::Tensor& x = a.tensors[i];
    const dsa::Tensor& y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.bytes != y.bytes) return false;
  }
  return true;
}

const dsa::Schema kSchema = {
    "fuzz",
    {
        {"q", {dsa::DType::BF16, dsa::DType::F32}, {"B", "S_q", "H", "D_qk"}},
        {"kv", dsa::DType::U8, {"N", 656}, false},
        {"indices", dsa::DType::I32, {"B", "S_q", "topk"}, false},
        {"a", dsa::DType::U8, {"N"}, false},
    },
    true,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  dsa::CaseFile parsed;
  try {
    parsed = dsa::parse_case_file(std::span<const std::uint8_t>(data, size), "fuzz");
  } catch (const dsa::CaseFileError&) {
    return 0;
  }
  std::vector<std::uint8_t> written;
  try {
    written = dsa::serialize_case_file(parsed);
  } catch (const dsa::CaseFileError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    broken("a case that parsed cannot be written");
  }
  dsa::CaseFile reread;
  try {
    reread = dsa::parse_case_file(written, "rewritten");
  } catch (const dsa::CaseFileError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    broken("the writer produced a file the reader rejects");
  }
  if (!same_case(parsed, reread)) broken("write then read changed the case");
  if (dsa::serialize_case_file(reread) != written) broken("writing is not deterministic");

  try {
    if (parsed.has_params()) (void)parsed.params().dump();
  } catch (const dsa::CaseFileError&) {
  }
  try {
    (void)dsa::check_schema(parsed, kSchema);
  } catch (const dsa::CaseFileError&) {
  }
  return 0;
}
