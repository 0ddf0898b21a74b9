// Case files of every op (oracle/include/dsa/op_cases.hpp): a case written and read back is the
// same case (same inputs, the same judged result); gold outputs in a case pass `check_case`; a
// malformed case names the tensor or parameter at fault.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "dsa/case_file.hpp"
#include "dsa/formats.hpp"
#include "dsa/op_cases.hpp"

namespace {

using namespace dsa;

CaseFile round_trip(const CaseFile& f) {
  const auto bytes = serialize_case_file(f);
  return parse_case_file(bytes, "roundtrip.safetensors");
}

template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

TEST(CaseOps, DecodeRoundTripKeepsEveryInput) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    RandomCaseSpec s;
    s.seed = seed;
    s.extra = seed % 2 == 0;
    s.index_mode = seed % 3 == 0 ? "logical" : "physical";
    const SparseMlaDecodeCase a = random_sparse_mla_decode_case(s);
    const SparseMlaDecodeCase b = sparse_mla_decode_case_from_file(round_trip(to_case_file(a)));
    SCOPED_TRACE(seed);
    EXPECT_EQ(a.B, b.B);
    EXPECT_EQ(a.S_q, b.S_q);
    EXPECT_EQ(a.H, b.H);
    EXPECT_EQ(a.mode, b.mode);
    EXPECT_EQ(a.cache.geo.layout, b.cache.geo.layout);
    EXPECT_EQ(a.cache.geo.block_stride_bytes, b.cache.geo.block_stride_bytes);
    EXPECT_EQ(a.cache.geo.scale_block_stride_bytes, b.cache.geo.scale_block_stride_bytes);
    EXPECT_TRUE(same(a.cache.values, b.cache.values));
    EXPECT_TRUE(same(a.cache.scales, b.cache.scales));
    EXPECT_TRUE(same(a.indices, b.indices));
    EXPECT_TRUE(same(a.topk_length, b.topk_length));
    EXPECT_TRUE(same(a.block_table, b.block_table));
    EXPECT_EQ(a.extra_cache.has_value(), b.extra_cache.has_value());
    if (a.extra_cache && b.extra_cache) {
      EXPECT_TRUE(same(a.extra_cache->values, b.extra_cache->values));
      EXPECT_TRUE(same(a.extra_indices, b.extra_indices));
      EXPECT_TRUE(same(a.extra_block_table, b.extra_block_table));
    }
    EXPECT_TRUE(same(a.q, b.q));
    EXPECT_TRUE(same(a.sink, b.sink));
    EXPECT_EQ(f32_bits(a.sm_scale), f32_bits(b.sm_scale));
    EXPECT_EQ(a.reader, b.reader);
    EXPECT_EQ(a.conventions, b.conventions);
  }
}

TEST(CaseOps, EveryOpWithGoldOutputsPassesCheck) {
  for (Op op : kAllOps)
    for (std::uint64_t seed : {1, 2, 3}) {
      RandomCaseSpec s;
      s.seed = seed;
      const CaseFile f = round_trip(make_case_file(op, s, "gold", true));
      const CaseResult r = check_case(f, nullptr);
      EXPECT_TRUE(r.pass()) << to_string(op) << " seed " << seed << ": "
                            << (r.outputs.empty() ? "no outputs" : r.outputs[0].cmp.failure);
      EXPECT_EQ(r.op, to_string(op));
      EXPECT_EQ(r.seed, seed);
    }
}

TEST(CaseOps, FastOutputsInASeparateFilePassCheck) {
  for (Op op : kAllOps) {
    RandomCaseSpec s;
    s.seed = 7;
    const CaseFile with = make_case_file(op, s, "fast");
    const CaseFile inputs = round_trip(make_case_file(op, s, "none"));
    CaseFile outs;
    for (const Tensor& t : with.tensors)
      if (!inputs.find(t.name)) outs.add(t);
    const CaseResult r = check_case(inputs, &outs);
    EXPECT_TRUE(r.pass()) << to_string(op);
  }
}

TEST(CaseOps, OverridesChangeTheJudging) {
  RandomCaseSpec s;
  s.seed = 4;
  s.B = 1;
  s.S_q = 1;
  s.H = 2;
  s.topk = 32;
  const CaseFile f = make_case_file(Op::sparse_mla_decode, s, "gold");
  const CaseResult loose = check_case(f, nullptr, {{"precision", "bf16p"}});
  const CaseResult tight = check_case(f, nullptr, {{"precision", "fp32p-rn"}, {"claims", {{"num_splits", 1}, {"tile_slots", 64}}}});
  // The same element errors over a smaller budget.
  EXPECT_GT(tight.outputs[0].cmp.worst_ratio, loose.outputs[0].cmp.worst_ratio);
  EXPECT_THROW(check_case(f, nullptr, {{"precision", "fp9"}}), InvalidArgument);
  EXPECT_THROW(check_case(f, nullptr, {{"claims", {{"num_splits", -1}}}}), InvalidArgument);
  EXPECT_THROW(check_case(f, nullptr, {{"sentinel", {{"bf16", "0x1FFFF"}}}}), InvalidArgument);
}

std::string error_of(const CaseFile& f) {
  try {
    (void)check_case(f, nullptr);
  } catch (const CaseFileError& e) {
    return std::string("CaseFileError: ") + e.what();
  } catch (const InvalidArgument& e) {
    return std::string("InvalidArgument: ") + e.what();
  }
  return "";
}

TEST(CaseOps, MalformedCasesNameTheTensorOrParameter) {
  RandomCaseSpec s;
  s.seed = 5;
  s.layout = "V32";
  const CaseFile good = make_case_file(Op::sparse_mla_decode, s, "gold");
  {  // a cache one byte short of its geometry
    CaseFile f = good;
    f.at("kv_cache").bytes.pop_back();
    f.at("kv_cache").shape = {static_cast<std::int64_t>(f.at("kv_cache").bytes.size())};
    const std::string e = error_of(f);
    EXPECT_NE(e.find("CaseFileError"), std::string::npos) << e;
    EXPECT_NE(e.find("kv_cache"), std::string::npos) << e;
  }
  {  // indices of the wrong dtype
    CaseFile f = good;
    f.at("indices").dtype = DType::U32;
    const std::string e = error_of(f);
    EXPECT_NE(e.find("indices"), std::string::npos) << e;
  }
  {  // an unknown tensor
    CaseFile f = good;
    f.add<float>("stray", {1}, std::vector<float>{1.0f});
    EXPECT_NE(error_of(f).find("stray"), std::string::npos);
  }
  {  // out of the wrong shape
    CaseFile f = good;
    Tensor t = f.at("out");
    f.tensors.erase(std::find_if(f.tensors.begin(), f.tensors.end(), [](const Tensor& x) { return x.name == "out"; }));
    t.shape.back() = 256;
    t.bytes.resize(t.bytes.size() / 2);
    f.add(t);
    EXPECT_NE(error_of(f).find("out"), std::string::npos) << error_of(f);
  }
  {  // unknown op, missing op, unknown layout, missing outputs
    CaseFile f = good;
    auto p = f.params();
    p["op"] = "flash_attention";
    f.set_params(p);
    EXPECT_NE(error_of(f).find("flash_attention"), std::string::npos);
    p.erase("op");
    f.set_params(p);
    EXPECT_NE(error_of(f).find("'op' is missing"), std::string::npos) << error_of(f);
    p = good.params();
    p["kv_cache"]["layout"] = "V33";
    f.set_params(p);
    EXPECT_NE(error_of(f).find("V33"), std::string::npos) << error_of(f);
    const CaseFile none = make_case_file(Op::sparse_mla_decode, s, "none");
    EXPECT_NE(error_of(none).find("no kernel outputs"), std::string::npos) << error_of(none);
  }
}

TEST(CaseOps, SchemasNameEveryOutput) {
  auto has = [](const Schema& s, const char* n) {
    return std::any_of(s.tensors.begin(), s.tensors.end(), [&](const TensorSpec& t) { return t.name == n; });
  };
  EXPECT_TRUE(has(op_schema(Op::sparse_mla_decode), "out"));
  EXPECT_TRUE(has(op_schema(Op::sparse_mla_decode), "lse"));
  EXPECT_TRUE(has(op_schema(Op::sparse_mla_prefill), "max_logits"));
  EXPECT_TRUE(has(op_schema(Op::paged_mqa_logits), "logits"));
  EXPECT_TRUE(has(op_schema(Op::mqa_logits), "logits"));
  EXPECT_TRUE(has(op_schema(Op::topk), "indices"));
}

}  // namespace
