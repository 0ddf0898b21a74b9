// Case files: the safetensors reader and writer (one test per rule), parameters, schemas.
#include "dsa/case_file.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace dsa {
namespace {

using Bytes = std::vector<std::uint8_t>;

// A safetensors image from header text and data bytes; `declared` overrides the length prefix.
Bytes image(const std::string& header, const Bytes& data = {}, std::uint64_t declared = UINT64_MAX) {
  const std::uint64_t n = declared == UINT64_MAX ? header.size() : declared;
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Parses `bytes` and returns the error text, or "" when it parsed.
std::string parse_error(const Bytes& bytes) {
  try {
    parse_case_file(bytes, "case.safetensors");
  } catch (const CaseFileError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "message must be one line";
    return e.what();
  }
  return "";
}

#define EXPECT_REJECTED(bytes, fragment)                                    \
  do {                                                                      \
    const std::string _msg = parse_error(bytes);                            \
    EXPECT_NE(_msg, "") << "accepted, expected: " << (fragment);            \
    EXPECT_NE(_msg.find(fragment), std::string::npos) << "message: " << _msg; \
  } while (0)

// Two tensors written byte by byte: "a" F32 [2] = {1.0, -2.0} and "b" U8 [3] = {7, 8, 9}, with
// metadata {"dsa": "{}"}. The header is 135 bytes of JSON and 1 space of padding: 136 = 0x88.
const std::string kHandBuiltHeader =
    R"({"__metadata__":{"dsa":"{}"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}} )";
const Bytes kHandBuilt = [] {
  Bytes out(8 + kHandBuiltHeader.size() + 11);
  const std::uint8_t length[8] = {0x88, 0, 0, 0, 0, 0, 0, 0};
  const std::uint8_t data[11] = {0x00, 0x00, 0x80, 0x3F,  // 1.0f
                                 0x00, 0x00, 0x00, 0xC0,  // -2.0f
                                 0x07, 0x08, 0x09};
  std::memcpy(out.data(), length, 8);
  std::memcpy(out.data() + 8, kHandBuiltHeader.data(), kHandBuiltHeader.size());
  std::memcpy(out.data() + 8 + kHandBuiltHeader.size(), data, 11);
  return out;
}();

TEST(CaseFileRead, HandBuiltFileParses) {
  ASSERT_EQ(kHandBuiltHeader.size(), 0x88u);
  const CaseFile c = parse_case_file(kHandBuilt, "hand");
  ASSERT_EQ(c.tensors.size(), 2u);
  EXPECT_EQ(c.get<float>("a"), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(c.get<std::uint8_t>("b"), (std::vector<std::uint8_t>{7, 8, 9}));
  EXPECT_EQ(c.at("a").shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(c.metadata.at("dsa"), "{}");
  EXPECT_TRUE(c.params().empty());
}

TEST(CaseFileRead, WriterReproducesTheHandBuiltBytes) {
  // The writer puts the 4-byte tensor before the 1-byte one and pads the header like the
  // safetensors package, so this file is byte-identical.
  EXPECT_EQ(serialize_case_file(parse_case_file(kHandBuilt)), kHandBuilt);
}

TEST(CaseFileRead, EmptyCaseIsValid) {
  const CaseFile c = parse_case_file(image("{}"));
  EXPECT_TRUE(c.tensors.empty());
  EXPECT_TRUE(c.metadata.empty());
}

TEST(CaseFileRead, TensorsComeSortedByNameWhateverTheFileOrder) {
  const CaseFile c = parse_case_file(image(
      R"({"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
      {1, 2}));
  ASSERT_EQ(c.tensors.size(), 2u);
  EXPECT_EQ(c.tensors[0].name, "a");
  EXPECT_EQ(c.tensors[0].bytes, Bytes{2});
  EXPECT_EQ(c.tensors[1].name, "z");
}

TEST(CaseFileRead, ScalarsAndEmptyTensorsAreValid) {
  const CaseFile c = parse_case_file(image(
      R"({"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"BF16","shape":[0,5],"data_offsets":[4,4]}})",
      {5, 0, 0, 0}));
  EXPECT_EQ(c.get<std::int32_t>("s"), std::vector<std::int32_t>{5});
  EXPECT_TRUE(c.at("e").bytes.empty());
  EXPECT_EQ(c.at("e").numel(), 0);
}

TEST(CaseFileRead, HeaderMayBePaddedWithSpaces) {
  EXPECT_EQ(parse_error(image("{}      ")), "");
}

// ---------------------------------------------------------------------------------------------
// Every violation class, each with the words of its rule.
TEST(CaseFileReject, TruncatedBeforeTheLength) {
  EXPECT_REJECTED((Bytes{1, 0, 0}), "case.safetensors: truncated: 3 bytes");
  EXPECT_REJECTED(Bytes{}, "truncated: 0 bytes");
}

TEST(CaseFileReject, HeaderLengthBeyondTheFile) {
  EXPECT_REJECTED(image("{}", {}, 3), "header length 3 exceeds the 2 bytes that follow");
}

TEST(CaseFileReject, HeaderLengthBeyondTheLimit) {
  EXPECT_REJECTED(image("{}", {}, kCaseMaxHeaderBytes + 1), "exceeds the limit of 100000000");
  EXPECT_REJECTED(image("{}", {}, UINT64_MAX - 1), "exceeds the limit");
}

TEST(CaseFileReject, EmptyHeader) { EXPECT_REJECTED(image(""), "header is empty"); }

TEST(CaseFileReject, HeaderNotJson) {
  EXPECT_REJECTED(image("{\"a\":"), "header is not valid JSON");
  EXPECT_REJECTED(image("{\"a\" 1}"), "header is not valid JSON");
  EXPECT_REJECTED(image("{} x"), "header is not valid JSON");
  EXPECT_REJECTED(image(std::string("{}\0", 3)), "header is not valid JSON");
  EXPECT_REJECTED(image("{\"\xff\":1}"), "header is not valid JSON");  // not UTF-8
}

TEST(CaseFileReject, HeaderNotAnObject) {
  EXPECT_REJECTED(image("[1,2]"), "must start with '{'");
  EXPECT_REJECTED(image(" {}"), "must start with '{'");
  EXPECT_REJECTED(image(R"({"a":5})"), "tensor 'a': tensor entry must be an object");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":{}}})", {0}),
                  "unknown field 'x'");
}

TEST(CaseFileReject, MissingFields) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1]}})", {0}), "tensor 'a': missing field 'data_offsets'");
  EXPECT_REJECTED(image(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", {0}), "missing field 'dtype'");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", {0}), "missing field 'shape'");
}

TEST(CaseFileReject, DtypeOutsideTheAllowList) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", Bytes(8)),
                  "tensor 'a': dtype 'C64' is not one the case files accept");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", Bytes(4)), "dtype 'f32'");
  EXPECT_REJECTED(image(R"({"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}})", Bytes(4)), "dtype must be a string");
}

TEST(CaseFileReject, OffsetsOutsideTheBuffer) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", Bytes(3)),
                  "tensor 'a': data_offsets [0,4] lie outside the 3-byte data buffer");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}})", Bytes(3)), "run backwards");
}

TEST(CaseFileReject, WrongDataOffsetsLength) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", {0}),
                  "data_offsets must have exactly 2 entries");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}})", {0}),
                  "data_offsets must have exactly 2 entries");
}

TEST(CaseFileReject, OverlappingTensors) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                        R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                        Bytes(3)),
                  "tensor 'b': data_offsets [1,3] overlap tensor 'a'");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                        R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
                        Bytes(2)),
                  "overlap");
}

TEST(CaseFileReject, HoleInTheBuffer) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", Bytes(2)),
                  "tensor 'a': hole in the data buffer: bytes [0,1)");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", Bytes(3)),
                  "hole in the data buffer: bytes [1,3) at its end");
}

TEST(CaseFileReject, SizeMismatchWithShape) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", Bytes(4)),
                  "tensor 'a': shape [2] of F32 needs 8 bytes but data_offsets [0,4] hold 4");
}

TEST(CaseFileReject, OverflowingShape) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                  "overflows");
  // The product overflows before the zero dim is reached (as the safetensors package rules).
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})"),
                  "overflows");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})"),
                  "overflows");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}})"),
                  "shape must hold non-negative integers");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})"),
                  "overflows");
}

TEST(CaseFileReject, NegativeOrFractionalDims) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})"),
                  "tensor 'a': shape must hold non-negative integers, not a negative integer");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", {0}), "non-integer");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,-1]}})", {0}),
                  "data_offsets must hold non-negative integers");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[[1]],"data_offsets":[0,1]}})", {0}), "not an array");
}

TEST(CaseFileReject, TooManyDims) {
  std::string dims = "1";
  for (std::size_t i = 0; i < kCaseMaxRank; ++i) dims += ",1";
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[)" + dims + R"(],"data_offsets":[0,1]}})", {0}),
                  "more than 16 dims");
}

TEST(CaseFileReject, NonStringMetadataValues) {
  EXPECT_REJECTED(image(R"({"__metadata__":{"seed":5}})"), "metadata value of key 'seed' must be a string");
  EXPECT_REJECTED(image(R"({"__metadata__":{"x":{"y":"z"}}})"), "must be a string, not an object");
  EXPECT_REJECTED(image(R"({"__metadata__":["a"]})"), "__metadata__ must be an object of strings");
  EXPECT_REJECTED(image(R"({"__metadata__":null})"), "__metadata__ must be an object of strings");
}

TEST(CaseFileReject, DuplicateNames) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                        Bytes(2)),
                  "tensor 'a': tensor name appears twice");
  EXPECT_REJECTED(image(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", {0}),
                  "field 'dtype' appears twice");
  EXPECT_REJECTED(image(R"({"__metadata__":{"k":"1","k":"2"}})"), "metadata key 'k' appears twice");
  EXPECT_REJECTED(image(R"({"__metadata__":{},"__metadata__":{}})"), "__metadata__ appears twice");
  EXPECT_REJECTED(image(R"({"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", {0}), "empty name");
}

TEST(CaseFileReject, NamesInMessagesAreMadePrintable) {
  const std::string msg =
      parse_error(image("{\"a\\nb\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,1]}}", {0}));
  EXPECT_NE(msg.find("tensor 'a\\x0ab'"), std::string::npos) << msg;
}

TEST(CaseFileReject, MissingFileNamesThePath) {
  try {
    read_case_file("/nonexistent/x.safetensors");
    FAIL() << "no error";
  } catch (const CaseFileError& e) {
    EXPECT_EQ(e.source(), "/nonexistent/x.safetensors");
    EXPECT_EQ(e.argument(), "/nonexistent/x.safetensors");
  }
}

TEST(CaseFileReject, FileReaderAgreesWithMemoryReader) {
  // read_case_file reads the header and each tensor on its own; same verdicts as parse_case_file.
  const std::vector<Bytes> images = {
      kHandBuilt,
      Bytes{1, 0, 0},
      image("{}", {}, 3),
      image("{}", {}, 2),
      image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", Bytes(3)),
      image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", Bytes(3)),
      image(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})", {4, 5, 6}),
  };
  const auto dir = std::filesystem::temp_directory_path() / ("dsa_case_file_agree_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "x.safetensors").string();
  for (std::size_t i = 0; i < images.size(); ++i) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(images[i].data()), static_cast<std::streamsize>(images[i].size()));
    }
    std::string from_memory, from_file;
    CaseFile a, b;
    try {
      a = parse_case_file(images[i], path);
    } catch (const CaseFileError& e) {
      from_memory = e.what();
    }
    try {
      b = read_case_file(path);
    } catch (const CaseFileError& e) {
      from_file = e.what();
    }
    EXPECT_EQ(from_file, from_memory) << "image " << i;
    EXPECT_EQ(serialize_case_file(a), serialize_case_file(b)) << "image " << i;
  }
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
CaseFile sample_case() {
  CaseFile c;
  const std::vector<float> q = {0.5f, -1.25f, 3.0f, 1e-3f, 7.0f, -0.0f};
  const std::vector<std::uint16_t> kv = {0x3F80, 0xBF80, 0x7FC0, 0x0001};
  const std::vector<std::uint8_t> codes = {0x00, 0x7F, 0x80, 0xFE, 0x38};
  const std::vector<std::int32_t> idx = {-1, 0, 5, 2147483647};
  const std::vector<double> d = {1.0 / 3.0};
  c.add<float>("q", {1, 2, 3}, q);
  c.add<std::uint16_t>("kv", {2, 2}, kv, DType::BF16);
  c.add<std::uint8_t>("codes", {5}, codes, DType::F8_E4M3);
  c.add<std::int32_t>("indices", {4}, idx);
  c.add<double>("scalar", {}, d);
  c.set_params({{"op", "sparse_mla_decode"}, {"seed", 42}, {"shape", {{"B", 1}, {"H", 2}}}});
  c.metadata["note"] = "free text \xc3\xa9";
  return c;
}

TEST(CaseFileRoundTrip, WriteThenReadIsIdentity) {
  const CaseFile c = sample_case();
  const auto bytes = serialize_case_file(c);
  const CaseFile r = parse_case_file(bytes);
  EXPECT_EQ(r.metadata, c.metadata);
  ASSERT_EQ(r.tensors.size(), c.tensors.size());
  for (const Tensor& t : c.tensors) {
    const Tensor& u = r.at(t.name);
    EXPECT_EQ(u.dtype, t.dtype) << t.name;
    EXPECT_EQ(u.shape, t.shape) << t.name;
    EXPECT_EQ(u.bytes, t.bytes) << t.name;
  }
  EXPECT_EQ(r.params()["seed"], 42);
  EXPECT_EQ(serialize_case_file(r), bytes) << "writing is deterministic";
}

TEST(CaseFileRoundTrip, OffsetsAreAlignedToTheElementSize) {
  const auto bytes = serialize_case_file(sample_case());
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  EXPECT_EQ(n % 8, 0u);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  const auto h = nlohmann::json::parse(header);
  for (const auto& [name, entry] : h.items()) {
    if (name == "__metadata__") continue;
    const auto size = dtype_size(*dtype_from_string(entry["dtype"].get<std::string>()));
    EXPECT_EQ(entry["data_offsets"][0].get<std::uint64_t>() % size, 0u) << name;
  }
}

TEST(CaseFileRoundTrip, ThroughADiskFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("dsa_case_file_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "c.safetensors").string();
  write_case_file(path, sample_case());
  const CaseFile r = read_case_file(path);
  EXPECT_EQ(r.source, path);
  EXPECT_EQ(r.get<std::int32_t>("indices"), (std::vector<std::int32_t>{-1, 0, 5, 2147483647}));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::remove_all(dir);
}

TEST(CaseFileAccess, GetChecksTheDtype) {
  const CaseFile c = sample_case();
  EXPECT_EQ(c.get<std::uint16_t>("kv", DType::BF16)[0], 0x3F80);
  try {
    (void)c.get<float>("kv");
    FAIL();
  } catch (const CaseFileError& e) {
    EXPECT_EQ(e.tensor(), "kv");
    EXPECT_STREQ(e.what(), "tensor 'kv': dtype is BF16 but F32 is expected");
  }
  EXPECT_THROW((void)c.get<float>("kv", DType::BF16), CaseFileError);  // 4-byte element, 2-byte dtype
  EXPECT_THROW((void)c.get<float>("absent"), CaseFileError);
}

TEST(CaseFileAccess, ExpectChecksDtypeAndShape) {
  const CaseFile c = sample_case();
  EXPECT_NO_THROW(c.expect("q", DType::F32, {1, 2, 3}));
  try {
    c.expect("q", DType::F32, {1, 3, 2});
    FAIL();
  } catch (const CaseFileError& e) {
    EXPECT_STREQ(e.what(), "tensor 'q': shape is [1,2,3] but [1,3,2] is expected");
  }
}

TEST(CaseFileAccess, AddRejectsBadTensors) {
  CaseFile c;
  const std::vector<float> three(3);
  EXPECT_THROW(c.add<float>("x", {2}, three), CaseFileError);
  EXPECT_THROW(c.add<float>("", {3}, three), CaseFileError);
  EXPECT_THROW(c.add<float>("x", {-3}, three), CaseFileError);
  c.add<float>("x", {3}, three);
  EXPECT_THROW(c.add<float>("x", {3}, three), CaseFileError);
}

TEST(CaseFileAccess, WriterRejectsDuplicatesAndInvalidUtf8) {
  CaseFile c;
  c.tensors.push_back({"x", DType::U8, {1}, {0}});
  c.tensors.push_back({"x", DType::U8, {1}, {0}});
  EXPECT_THROW(serialize_case_file(c), CaseFileError);
  CaseFile d;
  d.tensors.push_back({"\xff", DType::U8, {1}, {0}});
  EXPECT_THROW(serialize_case_file(d), CaseFileError);
  CaseFile e;
  e.metadata["k"] = "\xc3";
  EXPECT_THROW(serialize_case_file(e), CaseFileError);
}

TEST(CaseFileParams, MissingOrMalformed) {
  CaseFile c;
  EXPECT_FALSE(c.has_params());
  EXPECT_THROW(c.params(), CaseFileError);
  c.metadata["dsa"] = "[1]";
  EXPECT_THROW(c.params(), CaseFileError);
  c.metadata["dsa"] = "{\"a\":1,\"a\":2}";
  EXPECT_THROW(c.params(), CaseFileError);
  c.metadata["dsa"] = "{\"a\":";
  EXPECT_THROW(c.params(), CaseFileError);
  c.metadata["dsa"] = std::string(1000, '[') + std::string(1000, ']');
  EXPECT_THROW(c.params(), CaseFileError);
  EXPECT_THROW(c.set_params(nlohmann::json::array()), CaseFileError);
}

// ---------------------------------------------------------------------------------------------
const Schema kDecodeLike = {
    "decode_like",
    {
        {"q", DType::F32, {"B", "S_q", "H"}},
        {"kv", {DType::BF16, DType::F16}, {"N", 2}},
        {"indices", DType::I32, {"T"}},
        {"out", DType::F32, {"B", "S_q", "H"}, false},
    },
};

CaseFile schema_case() {
  CaseFile c;
  c.add<float>("q", {1, 2, 3}, std::vector<float>(6));
  c.add<std::uint16_t>("kv", {2, 2}, std::vector<std::uint16_t>(4), DType::BF16);
  c.add<std::int32_t>("indices", {4}, std::vector<std::int32_t>(4));
  return c;
}

std::string schema_error(const CaseFile& c, const Schema& s, const Bindings& b = {}) {
  try {
    check_schema(c, s, b);
  } catch (const CaseFileError& e) {
    return e.what();
  }
  return "";
}

TEST(CaseFileSchema, BindsEverySymbol) {
  const Bindings b = check_schema(schema_case(), kDecodeLike);
  EXPECT_EQ(b, (Bindings{{"B", 1}, {"S_q", 2}, {"H", 3}, {"N", 2}, {"T", 4}}));
}

TEST(CaseFileSchema, InconsistentSymbolNamesTensorDimAndOrigin) {
  CaseFile c = schema_case();
  c.add<float>("out", {1, 2, 4}, std::vector<float>(8));
  EXPECT_EQ(schema_error(c, kDecodeLike), "tensor 'out': dim 2 (H) is 4 but H = 3 from tensor 'q' dim 2");
}

TEST(CaseFileSchema, PreboundSymbols) {
  EXPECT_EQ(schema_error(schema_case(), kDecodeLike, {{"T", 5}}),
            "tensor 'indices': dim 0 (T) is 4 but T = 5 from the case parameters");
}

TEST(CaseFileSchema, FixedExtent) {
  CaseFile c;
  c.add<float>("q", {1, 2, 3}, std::vector<float>(6));
  c.add<std::uint16_t>("kv", {1, 4}, std::vector<std::uint16_t>(4), DType::F16);
  c.add<std::int32_t>("indices", {4}, std::vector<std::int32_t>(4));
  EXPECT_EQ(schema_error(c, kDecodeLike), "tensor 'kv': dim 1 is 4 but op 'decode_like' needs 2");
}

TEST(CaseFileSchema, DtypeRankMissingExtra) {
  CaseFile c = schema_case();
  c.at("indices").dtype = DType::U32;
  EXPECT_EQ(schema_error(c, kDecodeLike), "tensor 'indices': dtype is U32 but op 'decode_like' needs I32");
  c = schema_case();
  c.at("kv").dtype = DType::F32;
  c.at("kv").shape = {2, 1};
  EXPECT_NE(schema_error(c, kDecodeLike).find("needs BF16 or F16"), std::string::npos);
  c = schema_case();
  c.at("q").shape = {6};
  EXPECT_EQ(schema_error(c, kDecodeLike), "tensor 'q': shape [6] has 1 dims but op 'decode_like' needs 3");
  c = schema_case();
  c.tensors.erase(c.tensors.begin());  // "q"
  EXPECT_EQ(schema_error(c, kDecodeLike), "tensor 'q': required by op 'decode_like' but missing");
  c = schema_case();
  c.add<std::uint8_t>("extra", {1}, std::vector<std::uint8_t>(1));
  EXPECT_EQ(schema_error(c, kDecodeLike), "tensor 'extra': not a tensor of op 'decode_like'");
  Schema lax = kDecodeLike;
  lax.allow_extra = true;
  EXPECT_EQ(schema_error(c, lax), "");
}

TEST(CaseFileDType, NamesRoundTrip) {
  for (DType d : {DType::BOOL, DType::U8, DType::I8, DType::F8_E4M3, DType::F8_E5M2, DType::F8_E8M0,
                  DType::I16, DType::U16, DType::F16, DType::BF16, DType::I32, DType::U32, DType::F32,
                  DType::I64, DType::U64, DType::F64})
    EXPECT_EQ(dtype_from_string(to_string(d)), d);
  EXPECT_FALSE(dtype_from_string("F4"));
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
}

}  // namespace
}  // namespace dsa
