// Case files (DESIGN "Case files and reports"): one safetensors file per case — every input
// tensor by name, the case parameters as JSON under metadata key "dsa", optionally the outputs of
// a kernel under test. Read by a strict, bounded parser: any malformed file is a CaseFileError
// that names the file, the tensor and the rule, never a crash.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsa/error.hpp"

static_assert(std::endian::native == std::endian::little,
              "case files hold little-endian tensors; a big-endian host would need byte swaps");

namespace dsa {

// The safetensors dtypes a case file may hold (the allow-list; anything else is rejected).
// fp8 e4m3fnuz has no safetensors spelling: such tensors travel as U8 codes, their format named
// in the case parameters.
enum class DType : std::uint8_t {
  BOOL, U8, I8, F8_E4M3, F8_E5M2, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64,
};

std::string_view to_string(DType dtype);                     // the safetensors spelling, "BF16"
std::optional<DType> dtype_from_string(std::string_view s);  // nullopt outside the allow-list
std::size_t dtype_size(DType dtype);                         // bytes per element

// The dtype a native C++ element type stands for. bf16, fp8 and BOOL have no native type here:
// read them as the unsigned integer of their width and name the dtype, e.g.
// `get<std::uint16_t>("q", DType::BF16)`.
template <class T> struct native_dtype;
template <> struct native_dtype<float> { static constexpr DType value = DType::F32; };
template <> struct native_dtype<double> { static constexpr DType value = DType::F64; };
template <> struct native_dtype<std::int8_t> { static constexpr DType value = DType::I8; };
template <> struct native_dtype<std::uint8_t> { static constexpr DType value = DType::U8; };
template <> struct native_dtype<std::int16_t> { static constexpr DType value = DType::I16; };
template <> struct native_dtype<std::uint16_t> { static constexpr DType value = DType::U16; };
template <> struct native_dtype<std::int32_t> { static constexpr DType value = DType::I32; };
template <> struct native_dtype<std::uint32_t> { static constexpr DType value = DType::U32; };
template <> struct native_dtype<std::int64_t> { static constexpr DType value = DType::I64; };
template <> struct native_dtype<std::uint64_t> { static constexpr DType value = DType::U64; };
template <class T> inline constexpr DType dtype_of = native_dtype<T>::value;

// A malformed case file, or a case that breaks a rule of its op's schema. `source()` is the file
// path (or the name given to parse_case_file), `tensor()` the tensor concerned (empty for a rule
// of the file as a whole). what() is one line: "<source>: tensor '<name>': <rule>".
class CaseFileError : public InvalidArgument {
 public:
  CaseFileError(std::string source, std::string tensor, std::string rule);
  const std::string& source() const noexcept { return source_; }
  const std::string& tensor() const noexcept { return tensor_; }

 private:
  std::string source_;
  std::string tensor_;
};

// Limits of the reader. The header limit is the one the safetensors package itself applies.
inline constexpr std::uint64_t kCaseMaxHeaderBytes = 100'000'000;
inline constexpr std::size_t kCaseMaxRank = 16;
inline constexpr int kCaseMaxParamsDepth = 32;  // nesting depth of the "dsa" JSON parameters
inline constexpr const char* kCaseParamsKey = "dsa";

struct Tensor {
  std::string name;
  DType dtype = DType::U8;
  std::vector<std::int64_t> shape;  // row-major, every dim >= 0; {} is a scalar
  std::vector<std::uint8_t> bytes;  // little-endian elements, numel() * dtype_size(dtype) bytes

  // Product of the dims; throws CaseFileError when a dim is negative or the product overflows.
  std::int64_t numel() const;
};

struct CaseFile {
  std::map<std::string, std::string> metadata;  // "__metadata__" of the file; "dsa" = parameters
  std::vector<Tensor> tensors;                  // sorted by name when read
  std::string source;                           // file path for messages ("" when built here)

  const Tensor* find(std::string_view name) const;
  const Tensor& at(std::string_view name) const;  // throws "tensor is missing"
  Tensor& at(std::string_view name);

  // Adds a tensor; throws on an empty or duplicate name, a bad shape, or bytes that do not match
  // the shape.
  void add(Tensor tensor);
  template <class T>
  void add(std::string name, std::vector<std::int64_t> shape, std::span<const T> values,
           DType dtype = dtype_of<T>) {
    static_assert(std::is_trivially_copyable_v<T>);
    Tensor t{std::move(name), dtype, std::move(shape), {}};
    check_element_size(t.name, dtype, sizeof(T));
    t.bytes.resize(values.size_bytes());
    if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), values.size_bytes());
    add(std::move(t));
  }

  // The tensor `name`, checked to have this dtype and exactly this shape.
  const Tensor& expect(std::string_view name, DType dtype,
                       std::span<const std::int64_t> shape) const;
  const Tensor& expect(std::string_view name, DType dtype,
                       std::initializer_list<std::int64_t> shape) const {
    return expect(name, dtype, std::span<const std::int64_t>(shape.begin(), shape.size()));
  }

  // The elements of tensor `name`, which must hold `dtype` (of sizeof(T) bytes per element).
  template <class T>
  std::vector<T> get(std::string_view name, DType dtype = dtype_of<T>) const {
    static_assert(std::is_trivially_copyable_v<T>);
    const Tensor& t = checked_dtype(name, dtype);
    check_element_size(t.name, dtype, sizeof(T));
    std::vector<T> out(t.bytes.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), out.size() * sizeof(T));
    return out;
  }

  // The case parameters: the JSON object stored as text under metadata key "dsa" (op name,
  // shapes, layout, profile, seed, ...). params() throws when the key is missing or its text is
  // not a JSON object (duplicate keys and nesting deeper than kCaseMaxParamsDepth are rejected).
  bool has_params() const { return metadata.count(kCaseParamsKey) != 0; }
  nlohmann::json params() const;
  void set_params(const nlohmann::json& params);

 private:
  const Tensor& checked_dtype(std::string_view name, DType dtype) const;
  void check_element_size(const std::string& name, DType dtype, std::size_t size) const;
};

// Parses a whole safetensors image. `source` names it in error messages.
CaseFile parse_case_file(std::span<const std::uint8_t> bytes, std::string_view source = "<memory>");
CaseFile read_case_file(const std::string& path);

// Deterministic image: tensors ordered by element size (largest first) then name, so every
// tensor is aligned to its element size; header padded with spaces to a multiple of 8 bytes and
// metadata first — the same conventions as the safetensors package.
std::vector<std::uint8_t> serialize_case_file(const CaseFile& case_file);
// Writes through a temporary file beside `path` and renames it, so a reader never sees half a file.
void write_case_file(const std::string& path, const CaseFile& case_file);

// ---------------------------------------------------------------------------------------------
// Schemas: which tensors an op's case holds, their dtypes and symbolic shapes. check_schema binds
// each symbol at its first use and reports the first tensor or dim that disagrees.

// One dim of a schema shape: a symbol ("B", "S_q") or a fixed extent (656).
struct Dim {
  std::string symbol;      // empty for a fixed extent
  std::int64_t value = 0;  // the fixed extent when symbol is empty
  Dim(const char* s) : symbol(s) {}
  Dim(std::string s) : symbol(std::move(s)) {}
  Dim(int v) : value(v) {}
  Dim(std::int64_t v) : value(v) {}
  bool is_symbol() const { return !symbol.empty(); }
};

// The dtypes a tensor may hold; converts from one DType or a braced list of them.
struct DTypes {
  std::vector<DType> allowed;
  DTypes(DType d) : allowed{d} {}
  DTypes(std::initializer_list<DType> ds) : allowed(ds) {}
  bool contains(DType d) const;
};

struct TensorSpec {
  std::string name;
  DTypes dtypes;
  std::vector<Dim> shape;
  bool required = true;  // optional tensors (e.g. a kernel's outputs) are checked when present
};

struct Schema {
  std::string op;                  // the op it describes, for messages
  std::vector<TensorSpec> tensors;
  bool allow_extra = false;        // tensors the schema does not name are an error unless true
};

using Bindings = std::map<std::string, std::int64_t>;

// Checks every tensor of the schema against the case and returns the symbol bindings. `bound`
// pre-binds symbols (e.g. from the case parameters).
Bindings check_schema(const CaseFile& case_file, const Schema& schema, const Bindings& bound = {});

}  // namespace dsa
