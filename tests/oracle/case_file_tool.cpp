// case_file_tool: the C++ side of the Python round-trip test (tests/oracle/python/roundtrip_test.py).
//   show IN        print IN as JSON: metadata, and per tensor dtype, shape and data as hex
//   copy IN OUT    read IN with the project's reader, write it to OUT with the project's writer
//   make OUT       write the canonical case (values from the formulas below)
//   check IN       verify that IN holds exactly the canonical case
//   reject IN      succeed only if the reader rejects IN; print the error
//   skip REASON    print REASON and exit 77 (ctest SKIP_RETURN_CODE)
// Exit: 0 success, 1 check failed or CaseFileError, 2 usage, 77 skipped.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "dsa/case_file.hpp"

namespace {

using dsa::CaseFile;
using dsa::DType;
using json = nlohmann::json;

// The canonical case. tests/oracle/python/roundtrip_test.py computes the same values in Python;
// change both together.
CaseFile canonical_case() {
  CaseFile c;
  std::vector<float> q(2 * 3 * 4);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(i) * 0.25f - 3.0f;
  std::vector<std::uint16_t> kv(3 * 8);  // bf16 codes, NaN and inf patterns included
  for (std::size_t i = 0; i < kv.size(); ++i) kv[i] = static_cast<std::uint16_t>((i * 1013 + 7) & 0xFFFF);
  kv[0] = 0x7FC0;  // NaN
  kv[1] = 0xFF80;  // -inf
  std::vector<std::uint8_t> kv_fp8(5 * 7);  // e4m3fn codes, 0x7F/0xFF are NaN
  for (std::size_t i = 0; i < kv_fp8.size(); ++i) kv_fp8[i] = static_cast<std::uint8_t>((i * 37 + 11) & 0xFF);
  std::vector<std::uint8_t> e5m2(3);
  for (std::size_t i = 0; i < e5m2.size(); ++i) e5m2[i] = static_cast<std::uint8_t>(0x3C + i);
  std::vector<std::int32_t> indices(2 * 5);
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int32_t>(i) * 7919 - 20000;
  std::vector<std::int64_t> lens(2);
  for (std::size_t i = 0; i < lens.size(); ++i) lens[i] = static_cast<std::int64_t>(i) * (std::int64_t{1} << 40) + 3;
  const std::vector<double> scale = {1.0 / 3.0};
  std::vector<std::uint8_t> mask(6);
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = i % 3 == 0;
  const std::vector<std::uint16_t> half = {0x3C00, 0xC000, 0x7BFF, 0x0001};  // 1, -2, max, min subnormal
  c.add<float>("q", {2, 3, 4}, q);
  c.add<std::uint16_t>("kv", {3, 8}, kv, DType::BF16);
  c.add<std::uint8_t>("kv_fp8", {5, 7}, kv_fp8, DType::F8_E4M3);
  c.add<std::uint8_t>("e5m2", {3}, e5m2, DType::F8_E5M2);
  c.add<std::int32_t>("indices", {2, 5}, indices);
  c.add<std::int64_t>("lens", {2}, lens);
  c.add<double>("scale", {}, scale);
  c.add<std::uint8_t>("mask", {6}, mask, DType::BOOL);
  c.add<std::uint16_t>("half", {4}, half, DType::F16);
  c.add<std::uint8_t>("empty", {0, 3}, std::vector<std::uint8_t>{});
  c.set_params({{"op", "roundtrip"}, {"seed", 7}, {"shape", {{"B", 2}, {"H", 3}}}, {"profile", "flashmla"}});
  c.metadata["note"] = "caf\xc3\xa9 \xe2\x9c\x93";  // non-ASCII survives both ways
  return c;
}

int check(const std::string& path) {
  const CaseFile got = dsa::read_case_file(path);
  const CaseFile want = canonical_case();
  int failures = 0;
  auto fail = [&](const std::string& what) {
    std::cerr << "check: " << path << ": " << what << "\n";
    ++failures;
  };
  if (got.tensors.size() != want.tensors.size())
    fail("holds " + std::to_string(got.tensors.size()) + " tensors, expected " + std::to_string(want.tensors.size()));
  for (const dsa::Tensor& w : want.tensors) {
    const dsa::Tensor* g = got.find(w.name);
    if (!g) {
      fail("tensor '" + w.name + "' missing");
      continue;
    }
    if (g->dtype != w.dtype) fail("tensor '" + w.name + "' has dtype " + std::string(to_string(g->dtype)));
    if (g->shape != w.shape) fail("tensor '" + w.name + "' has the wrong shape");
    if (g->bytes != w.bytes) fail("tensor '" + w.name + "' has different bytes");
  }
  // Typed reads of the same values, as a kernel checker would make them.
  const auto q = got.get<float>("q");
  for (std::size_t i = 0; i < q.size(); ++i)
    if (q[i] != static_cast<float>(i) * 0.25f - 3.0f) fail("q[" + std::to_string(i) + "] = " + std::to_string(q[i]));
  if (got.get<double>("scale").at(0) != 1.0 / 3.0) fail("scale differs");
  if (got.get<std::int64_t>("lens").at(1) != (std::int64_t{1} << 40) + 3) fail("lens[1] differs");
  if (got.params() != want.params()) fail("parameters differ: " + got.params().dump());
  if (got.metadata.at("note") != want.metadata.at("note")) fail("metadata 'note' differs");
  if (failures == 0) std::cout << "check: " << path << ": canonical case, all " << want.tensors.size() << " tensors equal\n";
  return failures == 0 ? 0 : 1;
}

int show(const std::string& path) {
  const CaseFile c = dsa::read_case_file(path);
  static constexpr char kHex[] = "0123456789abcdef";
  json out = {{"metadata", c.metadata}, {"tensors", json::object()}};
  for (const dsa::Tensor& t : c.tensors) {
    std::string hex;
    for (std::uint8_t b : t.bytes) {
      hex += kHex[b >> 4];
      hex += kHex[b & 0xF];
    }
    out["tensors"][t.name] = {{"dtype", std::string(to_string(t.dtype))}, {"shape", t.shape}, {"hex", hex}};
  }
  std::cout << out.dump() << "\n";
  return 0;
}

int usage() {
  std::cerr << "usage: case_file_tool show IN | copy IN OUT | make OUT | check IN | reject IN | skip REASON\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string cmd = argv[1];
  try {
    if (cmd == "show" && argc == 3) return show(argv[2]);
    if (cmd == "copy" && argc == 4) {
      dsa::write_case_file(argv[3], dsa::read_case_file(argv[2]));
      return 0;
    }
    if (cmd == "make" && argc == 3) {
      dsa::write_case_file(argv[2], canonical_case());
      return 0;
    }
    if (cmd == "check" && argc == 3) return check(argv[2]);
    if (cmd == "reject" && argc == 3) {
      try {
        dsa::read_case_file(argv[2]);
      } catch (const dsa::CaseFileError& e) {
        std::cout << "rejected: " << e.what() << "\n";
        return 0;
      }
      std::cerr << "reject: " << argv[2] << " was accepted\n";
      return 1;
    }
    if (cmd == "skip") {
      std::cout << "SKIPPED: " << argv[2] << "\n";
      return 77;
    }
  } catch (const std::exception& e) {  // CaseFileError, or a missing key in `check`
    std::cerr << "case_file_tool " << cmd << ": " << e.what() << "\n";
    return 1;
  }
  return usage();
}
