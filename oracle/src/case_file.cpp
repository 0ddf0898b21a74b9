// Case files: the strict safetensors reader and writer, the "dsa" parameters, schema checks.
#include "dsa/case_file.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <system_error>
#include <utility>

namespace dsa {
namespace {

using json = nlohmann::json;

constexpr std::array<std::pair<DType, std::string_view>, 16> kDTypeNames{{
    {DType::BOOL, "BOOL"}, {DType::U8, "U8"},     {DType::I8, "I8"},
    {DType::F8_E4M3, "F8_E4M3"}, {DType::F8_E5M2, "F8_E5M2"}, {DType::F8_E8M0, "F8_E8M0"},
    {DType::I16, "I16"},   {DType::U16, "U16"},   {DType::F16, "F16"},
    {DType::BF16, "BF16"}, {DType::I32, "I32"},   {DType::U32, "U32"},
    {DType::F32, "F32"},   {DType::I64, "I64"},   {DType::U64, "U64"},
    {DType::F64, "F64"},
}};

// Text from a file, made safe for a one-line message: printable ASCII kept, everything else
// (control bytes, newlines, non-ASCII) as \xNN, cut after `max_chars`.
std::string printable(std::string_view s, std::size_t max_chars = 64) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max_chars) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string shape_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// numel * element size of a shape, or nullopt on a negative dim or an overflow past int64.
std::optional<std::uint64_t> byte_size(std::span<const std::uint64_t> dims, std::size_t elem) {
  std::uint64_t n = 1;
  for (std::uint64_t d : dims) {
    if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  }
  if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(elem), &n)) return std::nullopt;
  if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return n;
}

std::uint64_t load_u64_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// nlohmann's parse-error text without its "[json.exception.parse_error.101] " prefix.
std::string json_error_text(const std::exception& e) {
  std::string_view w = e.what();
  if (!w.empty() && w.front() == '[') {
    const auto close = w.find("] ");
    if (close != std::string_view::npos) w.remove_prefix(close + 2);
  }
  return printable(w, 160);
}

// ---------------------------------------------------------------------------------------------
// Header reader: a SAX handler that accepts exactly the safetensors header grammar — an object of
// tensor entries {"dtype", "shape", "data_offsets"} plus "__metadata__" {string: string} — and
// nothing deeper, so memory stays proportional to the entries and no DOM is ever built.
struct HeaderEntry {
  std::string name;
  std::optional<DType> dtype;
  bool has_shape = false;
  bool has_offsets = false;
  std::vector<std::uint64_t> shape;
  std::vector<std::uint64_t> offsets;
};

class HeaderSax {
 public:
  std::vector<HeaderEntry> entries;
  std::map<std::string, std::string> metadata;
  std::string error_tensor;  // set with error_rule when a handler refuses the header
  std::string error_rule;

  bool null() { return bad_value("null"); }
  bool boolean(bool) { return bad_value("a boolean"); }
  bool number_integer(std::int64_t v) {
    if (v >= 0) return number_unsigned(static_cast<std::uint64_t>(v));
    return bad_value("a negative integer");
  }
  bool number_unsigned(std::uint64_t v) {
    if (state_ == State::Shape) {
      if (entry().shape.size() >= kCaseMaxRank)
        return fail(entry().name, "shape has more than " + std::to_string(kCaseMaxRank) + " dims");
      entry().shape.push_back(v);
      return true;
    }
    if (state_ == State::Offsets) {
      if (entry().offsets.size() >= 2) return fail(entry().name, "data_offsets must have exactly 2 entries");
      entry().offsets.push_back(v);
      return true;
    }
    return bad_value("a number");
  }
  bool number_float(double, const std::string&) {
    return bad_value("a non-integer number (or an integer beyond 2^64)");
  }
  bool string(std::string& s) {
    if (state_ == State::Metadata) {
      metadata.emplace(key_, std::move(s));  // duplicates were refused in key()
      return true;
    }
    if (state_ == State::Tensor && key_ == "dtype") {
      entry().dtype = dtype_from_string(s);
      if (!entry().dtype)
        return fail(entry().name, "dtype '" + printable(s) +
                                      "' is not one the case files accept (BOOL, U8, I8, F8_E4M3, "
                                      "F8_E5M2, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, I64, "
                                      "U64, F64)");
      return true;
    }
    return bad_value("a string");
  }
  bool binary(json::binary_t&) { return bad_value("binary data"); }
  bool start_object(std::size_t) {
    switch (state_) {
      case State::Start: state_ = State::Top; return true;
      case State::Top:
        if (key_ == "__metadata__") {
          state_ = State::Metadata;
        } else {
          state_ = State::Tensor;
          entries.push_back(HeaderEntry{key_, {}, false, false, {}, {}});
        }
        fields_.clear();
        return true;
      default: return bad_value("an object");
    }
  }
  bool key(std::string& k) {
    if (state_ == State::Top) {
      if (k.empty()) return fail("", "a tensor has an empty name");
      if (!names_.insert(k).second)
        return fail(k, k == "__metadata__" ? "__metadata__ appears twice" : "tensor name appears twice");
    } else if (state_ == State::Metadata) {
      if (metadata.count(k)) return fail("", "metadata key '" + printable(k) + "' appears twice");
    } else if (state_ == State::Tensor) {
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        return fail(entry().name, "unknown field '" + printable(k) +
                                      "' (a tensor entry has dtype, shape and data_offsets)");
      if (!fields_.insert(k).second) return fail(entry().name, "field '" + k + "' appears twice");
    }
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    if (state_ == State::Tensor) {
      HeaderEntry& e = entry();
      for (const char* f : {"dtype", "shape", "data_offsets"})
        if (!fields_.count(f)) return fail(e.name, std::string("missing field '") + f + "'");
      if (e.offsets.size() != 2) return fail(e.name, "data_offsets must have exactly 2 entries");
      state_ = State::Top;
    } else if (state_ == State::Metadata) {
      state_ = State::Top;
    } else {
      state_ = State::Done;
    }
    return true;
  }
  bool start_array(std::size_t) {
    if (state_ == State::Tensor && key_ == "shape") {
      state_ = State::Shape;
      return true;
    }
    if (state_ == State::Tensor && key_ == "data_offsets") {
      state_ = State::Offsets;
      return true;
    }
    return bad_value("an array");
  }
  bool end_array() {
    state_ = State::Tensor;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    if (error_rule.empty())
      error_rule = "header is not valid JSON (byte " + std::to_string(position) + "): " + json_error_text(ex);
    return false;
  }

 private:
  enum class State { Start, Top, Tensor, Metadata, Shape, Offsets, Done };
  State state_ = State::Start;
  std::string key_;
  std::set<std::string> names_;   // top-level keys seen
  std::set<std::string> fields_;  // fields of the current tensor entry

  HeaderEntry& entry() { return entries.back(); }

  bool fail(std::string tensor, std::string rule) {
    error_tensor = std::move(tensor);
    error_rule = std::move(rule);
    return false;
  }
  // A value of the wrong kind where `state_` expects something else.
  bool bad_value(const std::string& what) {
    switch (state_) {
      case State::Start: return fail("", "header must be a JSON object, not " + what);
      case State::Top:
        if (key_ == "__metadata__") return fail("", "__metadata__ must be an object of strings, not " + what);
        return fail(key_, "tensor entry must be an object, not " + what);
      case State::Metadata:
        return fail("", "metadata value of key '" + printable(key_) + "' must be a string, not " + what);
      case State::Tensor:
        if (key_ == "dtype") return fail(entry().name, "dtype must be a string, not " + what);
        return fail(entry().name, key_ + " must be an array of non-negative integers, not " + what);
      case State::Shape:
        return fail(entry().name, "shape must hold non-negative integers, not " + what);
      case State::Offsets:
        return fail(entry().name, "data_offsets must hold non-negative integers, not " + what);
      case State::Done: break;
    }
    return fail("", "unexpected " + what + " after the header object");
  }
};

// ---------------------------------------------------------------------------------------------
// Parameters reader: a SAX handler that builds a DOM like json::parse, but refuses duplicate keys
// and nesting deeper than kCaseMaxParamsDepth (which also bounds the recursion of dump()).
class StrictDomSax {
 public:
  json root;
  std::string error;

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(std::int64_t v) { return put(json(v)); }
  bool number_unsigned(std::uint64_t v) { return put(json(v)); }
  bool number_float(double v, const std::string&) { return put(json(v)); }
  bool string(std::string& s) { return put(json(std::move(s))); }
  bool binary(json::binary_t&) { return refuse("binary data"); }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { stack_.pop_back(); return true; }
  bool end_array() { stack_.pop_back(); return true; }
  bool key(std::string& k) {
    if (stack_.back()->contains(k)) return refuse("key '" + printable(k) + "' appears twice");
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error.empty()) error = "not valid JSON: " + json_error_text(ex);
    return false;
  }

 private:
  std::vector<json*> stack_;
  std::string key_;

  bool refuse(std::string why) {
    error = std::move(why);
    return false;
  }
  json* place(json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }
  bool put(json v) {
    place(std::move(v));
    return true;
  }
  bool open(json container) {
    if (stack_.size() >= static_cast<std::size_t>(kCaseMaxParamsDepth))
      return refuse("nested deeper than " + std::to_string(kCaseMaxParamsDepth) + " levels");
    stack_.push_back(place(std::move(container)));
    return true;
  }
};

std::string dump_json(const json& j, const std::string& source, const std::string& what) {
  try {
    return j.dump();
  } catch (const json::exception& e) {
    throw CaseFileError(source, "", what + " cannot be written as JSON: " + json_error_text(e));
  }
}

void check_shape(const std::string& source, const Tensor& t) {
  if (t.name.empty()) throw CaseFileError(source, "", "a tensor has an empty name");
  if (t.shape.size() > kCaseMaxRank)
    throw CaseFileError(source, t.name, "shape has more than " + std::to_string(kCaseMaxRank) + " dims");
  std::vector<std::uint64_t> dims;
  for (std::int64_t d : t.shape) {
    if (d < 0) throw CaseFileError(source, t.name, "shape " + shape_string(t.shape) + " has a negative dim");
    dims.push_back(static_cast<std::uint64_t>(d));
  }
  const auto bytes = byte_size(dims, dtype_size(t.dtype));
  if (!bytes)
    throw CaseFileError(source, t.name, "shape " + shape_string(t.shape) + " of " +
                                            std::string(to_string(t.dtype)) + " overflows 2^63 bytes");
  if (*bytes != t.bytes.size())
    throw CaseFileError(source, t.name, "shape " + shape_string(t.shape) + " of " +
                                            std::string(to_string(t.dtype)) + " needs " +
                                            std::to_string(*bytes) + " bytes but the tensor holds " +
                                            std::to_string(t.bytes.size()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
std::string_view to_string(DType dtype) {
  for (const auto& [d, name] : kDTypeNames)
    if (d == dtype) return name;
  return "?";
}

std::optional<DType> dtype_from_string(std::string_view s) {
  for (const auto& [d, name] : kDTypeNames)
    if (name == s) return d;
  return std::nullopt;
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::BOOL: case DType::U8: case DType::I8:
    case DType::F8_E4M3: case DType::F8_E5M2: case DType::F8_E8M0: return 1;
    case DType::I16: case DType::U16: case DType::F16: case DType::BF16: return 2;
    case DType::I32: case DType::U32: case DType::F32: return 4;
    case DType::I64: case DType::U64: case DType::F64: return 8;
  }
  return 1;
}

CaseFileError::CaseFileError(std::string source, std::string tensor, std::string rule)
    : InvalidArgument(tensor.empty() ? printable(source, 200)
                                     : (source.empty() ? "" : printable(source, 200) + ": ") +
                                           "tensor '" + printable(tensor) + "'",
                      std::move(rule)),
      source_(std::move(source)),
      tensor_(std::move(tensor)) {}

std::int64_t Tensor::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      throw CaseFileError("", name, "shape " + shape_string(shape) + " has a negative dim or overflows");
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
const Tensor* CaseFile::find(std::string_view name) const {
  for (const Tensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const Tensor& CaseFile::at(std::string_view name) const {
  if (const Tensor* t = find(name)) return *t;
  throw CaseFileError(source, std::string(name), "tensor is missing");
}

Tensor& CaseFile::at(std::string_view name) {
  return const_cast<Tensor&>(std::as_const(*this).at(name));
}

void CaseFile::add(Tensor tensor) {
  check_shape(source, tensor);
  if (find(tensor.name)) throw CaseFileError(source, tensor.name, "tensor name appears twice");
  tensors.push_back(std::move(tensor));
}

const Tensor& CaseFile::checked_dtype(std::string_view name, DType dtype) const {
  const Tensor& t = at(name);
  if (t.dtype != dtype)
    throw CaseFileError(source, t.name, "dtype is " + std::string(to_string(t.dtype)) + " but " +
                                            std::string(to_string(dtype)) + " is expected");
  return t;
}

void CaseFile::check_element_size(const std::string& name, DType dtype, std::size_t size) const {
  if (dtype_size(dtype) != size)
    throw CaseFileError(source, name, "a C++ element of " + std::to_string(size) + " bytes cannot hold " +
                                          std::string(to_string(dtype)) + " (" +
                                          std::to_string(dtype_size(dtype)) + " bytes)");
}

const Tensor& CaseFile::expect(std::string_view name, DType dtype,
                               std::span<const std::int64_t> shape) const {
  const Tensor& t = checked_dtype(name, dtype);
  if (!std::equal(t.shape.begin(), t.shape.end(), shape.begin(), shape.end()))
    throw CaseFileError(source, t.name, "shape is " + shape_string(t.shape) + " but " +
                                            shape_string(shape) + " is expected");
  return t;
}

json CaseFile::params() const {
  const auto it = metadata.find(kCaseParamsKey);
  if (it == metadata.end())
    throw CaseFileError(source, "", std::string("metadata has no '") + kCaseParamsKey + "' key (the case parameters)");
  StrictDomSax sax;
  const std::string& text = it->second;
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true);
  } catch (const json::exception& e) {
    sax.error = "not valid JSON: " + json_error_text(e);
  }
  if (!ok || !sax.error.empty())
    throw CaseFileError(source, "", std::string("metadata '") + kCaseParamsKey + "' (case parameters) is " +
                                        (sax.error.empty() ? "not valid JSON" : sax.error));
  if (!sax.root.is_object())
    throw CaseFileError(source, "", std::string("metadata '") + kCaseParamsKey + "' (case parameters) must be a JSON object");
  return std::move(sax.root);
}

void CaseFile::set_params(const json& params) {
  if (!params.is_object())
    throw CaseFileError(source, "", "case parameters must be a JSON object");
  metadata[kCaseParamsKey] = dump_json(params, source, "case parameters");
}

// ---------------------------------------------------------------------------------------------
namespace {

// What the header says, checked against the size of the file: where each tensor lies.
struct HeaderPlan {
  std::map<std::string, std::string> metadata;
  std::vector<HeaderEntry> entries;  // every entry checked: dtype, shape, offsets inside the buffer
  std::uint64_t buffer_offset = 0;   // 8 + header length
};

// The header length from the first 8 bytes of a file of `file_size` bytes, checked.
std::uint64_t header_length(std::span<const std::uint8_t> prefix, std::uint64_t file_size,
                            const std::string& source) {
  auto file_error = [&](std::string rule) { return CaseFileError(source, "", std::move(rule)); };
  if (file_size < 8)
    throw file_error("truncated: " + std::to_string(file_size) + " bytes, fewer than the 8-byte header length");
  const std::uint64_t header_len = load_u64_le(prefix.data());
  const std::uint64_t after_prefix = file_size - 8;
  if (header_len > kCaseMaxHeaderBytes)
    throw file_error("header length " + std::to_string(header_len) + " exceeds the limit of " +
                     std::to_string(kCaseMaxHeaderBytes) + " bytes");
  if (header_len > after_prefix)
    throw file_error("header length " + std::to_string(header_len) + " exceeds the " +
                     std::to_string(after_prefix) + " bytes that follow the length (truncated file?)");
  if (header_len == 0) throw file_error("header is empty (it must be a JSON object)");
  return header_len;
}

HeaderPlan plan_header(std::span<const std::uint8_t> header, std::uint64_t buffer_size,
                       const std::string& source) {
  auto file_error = [&](std::string rule) { return CaseFileError(source, "", std::move(rule)); };
  if (header[0] != '{') throw file_error("header must start with '{' (a JSON object)");
  // The JSON lexer reads a NUL byte as the end of input, which would let bytes after it through.
  if (const auto nul = std::find(header.begin(), header.end(), std::uint8_t{0}); nul != header.end())
    throw file_error("header is not valid JSON: NUL byte at header byte " +
                     std::to_string(nul - header.begin()));

  HeaderSax sax;
  bool ok = false;
  try {
    ok = json::sax_parse(header.data(), header.data() + header.size(), &sax, json::input_format_t::json, true);
  } catch (const json::exception& e) {  // defensive: the SAX interface reports errors by value
    if (sax.error_rule.empty()) sax.error_rule = "header is not valid JSON: " + json_error_text(e);
  }
  if (!ok || !sax.error_rule.empty())
    throw CaseFileError(source, sax.error_tensor, sax.error_rule.empty() ? "header is not valid JSON" : sax.error_rule);

  struct Span {
    std::uint64_t begin, end;
    const HeaderEntry* entry;
  };
  std::vector<Span> spans;
  spans.reserve(sax.entries.size());
  for (const HeaderEntry& e : sax.entries) {
    const std::uint64_t begin = e.offsets[0], end = e.offsets[1];
    if (begin > end)
      throw CaseFileError(source, e.name, "data_offsets [" + std::to_string(begin) + "," +
                                              std::to_string(end) + "] run backwards");
    if (end > buffer_size)
      throw CaseFileError(source, e.name, "data_offsets [" + std::to_string(begin) + "," +
                                              std::to_string(end) + "] lie outside the " +
                                              std::to_string(buffer_size) + "-byte data buffer");
    const auto need = byte_size(e.shape, dtype_size(*e.dtype));
    std::vector<std::int64_t> shown;  // for messages only; dims beyond int64 print as -1
    for (std::uint64_t d : e.shape)
      shown.push_back(d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                          ? -1 : static_cast<std::int64_t>(d));
    if (!need)
      throw CaseFileError(source, e.name, "shape " + shape_string(shown) + " of " +
                                              std::string(to_string(*e.dtype)) + " overflows 2^63 bytes");
    if (*need != end - begin)
      throw CaseFileError(source, e.name, "shape " + shape_string(shown) + " of " +
                                              std::string(to_string(*e.dtype)) + " needs " +
                                              std::to_string(*need) + " bytes but data_offsets [" +
                                              std::to_string(begin) + "," + std::to_string(end) +
                                              "] hold " + std::to_string(end - begin));
    spans.push_back({begin, end, &e});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;  // the buffer must be tiled exactly, in offset order
  const HeaderEntry* previous = nullptr;
  for (const Span& s : spans) {
    if (s.begin < covered)
      throw CaseFileError(source, s.entry->name, "data_offsets [" + std::to_string(s.begin) + "," +
                                                     std::to_string(s.end) + "] overlap tensor '" +
                                                     printable(previous->name) + "'");
    if (s.begin > covered)
      throw CaseFileError(source, s.entry->name, "hole in the data buffer: bytes [" +
                                                     std::to_string(covered) + "," +
                                                     std::to_string(s.begin) + ") belong to no tensor");
    covered = s.end;
    previous = s.entry;
  }
  if (covered != buffer_size)
    throw file_error("hole in the data buffer: bytes [" + std::to_string(covered) + "," +
                     std::to_string(buffer_size) + ") at its end belong to no tensor");

  std::sort(sax.entries.begin(), sax.entries.end(),
            [](const HeaderEntry& a, const HeaderEntry& b) { return a.name < b.name; });
  return {std::move(sax.metadata), std::move(sax.entries), 8 + header.size()};
}

// The case a checked plan describes; `read(begin, tensor bytes)` fills one tensor's bytes from
// buffer offset `begin`.
template <class ReadBytes>
CaseFile build_case(HeaderPlan plan, const std::string& source, ReadBytes&& read) {
  CaseFile out;
  out.source = source;
  out.metadata = std::move(plan.metadata);
  out.tensors.reserve(plan.entries.size());
  for (HeaderEntry& e : plan.entries) {
    Tensor t;
    t.name = std::move(e.name);
    t.dtype = *e.dtype;
    t.shape.assign(e.shape.begin(), e.shape.end());  // every dim <= int64 max: checked
    t.bytes.resize(e.offsets[1] - e.offsets[0]);
    read(e.offsets[0], t.bytes);
    out.tensors.push_back(std::move(t));
  }
  return out;
}

}  // namespace

CaseFile parse_case_file(std::span<const std::uint8_t> bytes, std::string_view source_view) {
  const std::string source(source_view);
  const std::uint64_t header_len = header_length(bytes.first(std::min<std::size_t>(bytes.size(), 8)), bytes.size(), source);
  const auto buffer = bytes.subspan(8 + header_len);
  HeaderPlan plan = plan_header(bytes.subspan(8, header_len), buffer.size(), source);
  return build_case(std::move(plan), source, [&](std::uint64_t begin, std::vector<std::uint8_t>& dst) {
    if (!dst.empty()) std::memcpy(dst.data(), buffer.data() + begin, dst.size());
  });
}

CaseFile read_case_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw CaseFileError(path, "", ec ? "cannot open: " + ec.message() : "not a regular file (or missing)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CaseFileError(path, "", "cannot open for reading");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw CaseFileError(path, "", "cannot determine the file size");
  in.seekg(0, std::ios::beg);
  auto read_at = [&](std::uint64_t offset, std::uint8_t* dst, std::uint64_t n) {
    in.seekg(static_cast<std::streamoff>(offset), std::ios::beg);
    if (n > 0 && !in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n)))
      throw CaseFileError(path, "", "read failed at byte " + std::to_string(offset) + " (file changed while read?)");
  };
  // Only the header is read whole; each tensor is read straight into its own bytes, so a large
  // cache is held once.
  std::array<std::uint8_t, 8> prefix{};
  read_at(0, prefix.data(), std::min<std::uint64_t>(8, static_cast<std::uint64_t>(size)));
  const std::uint64_t header_len = header_length(prefix, static_cast<std::uint64_t>(size), path);
  std::vector<std::uint8_t> header(header_len);
  read_at(8, header.data(), header_len);
  HeaderPlan plan = plan_header(header, static_cast<std::uint64_t>(size) - 8 - header_len, path);
  const std::uint64_t base = plan.buffer_offset;
  return build_case(std::move(plan), path, [&](std::uint64_t begin, std::vector<std::uint8_t>& dst) {
    read_at(base + begin, dst.data(), dst.size());
  });
}

std::vector<std::uint8_t> serialize_case_file(const CaseFile& case_file) {
  const std::string& source = case_file.source;
  std::vector<const Tensor*> order;
  std::set<std::string_view> names;
  for (const Tensor& t : case_file.tensors) {
    check_shape(source, t);
    if (!names.insert(t.name).second) throw CaseFileError(source, t.name, "tensor name appears twice");
    if (t.name == "__metadata__") throw CaseFileError(source, t.name, "name is reserved for the metadata");
    order.push_back(&t);
  }
  // Largest element first keeps every tensor aligned to its element size, since the header is
  // padded to a multiple of 8.
  std::sort(order.begin(), order.end(), [](const Tensor* a, const Tensor* b) {
    const auto sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });

  std::string header = "{";
  if (!case_file.metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : case_file.metadata) meta[k] = v;
    header += "\"__metadata__\":" + dump_json(meta, source, "metadata");
  }
  std::uint64_t offset = 0;
  for (const Tensor* t : order) {
    if (header.size() > 1) header += ',';
    header += dump_json(json(t->name), source, "tensor name '" + printable(t->name) + "'");
    header += ":{\"dtype\":\"" + std::string(to_string(t->dtype)) + "\",\"shape\":[";
    for (std::size_t i = 0; i < t->shape.size(); ++i) {
      if (i) header += ',';
      header += std::to_string(t->shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + t->bytes.size()) + "]}";
    offset += t->bytes.size();
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kCaseMaxHeaderBytes)
    throw CaseFileError(source, "", "header of " + std::to_string(header.size()) + " bytes exceeds the limit");

  std::vector<std::uint8_t> out;
  out.reserve(8 + header.size() + offset);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  for (const Tensor* t : order) out.insert(out.end(), t->bytes.begin(), t->bytes.end());
  return out;
}

void write_case_file(const std::string& path, const CaseFile& case_file) {
  const std::vector<std::uint8_t> bytes = serialize_case_file(case_file);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw CaseFileError(path, "", "cannot open '" + printable(tmp, 200) + "' for writing");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw CaseFileError(path, "", "write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw CaseFileError(path, "", "cannot rename the temporary file into place");
  }
}

// ---------------------------------------------------------------------------------------------
bool DTypes::contains(DType d) const { return std::find(allowed.begin(), allowed.end(), d) != allowed.end(); }

Bindings check_schema(const CaseFile& case_file, const Schema& schema, const Bindings& bound) {
  const std::string& source = case_file.source;
  Bindings bindings = bound;
  std::map<std::string, std::string> origin;  // symbol -> where it was bound, for messages
  for (const auto& [sym, value] : bound) origin[sym] = "the case parameters";

  for (const TensorSpec& spec : schema.tensors) {
    const Tensor* t = case_file.find(spec.name);
    if (!t) {
      if (spec.required)
        throw CaseFileError(source, spec.name, "required by op '" + schema.op + "' but missing");
      continue;
    }
    if (!spec.dtypes.contains(t->dtype)) {
      std::string allowed;
      for (DType d : spec.dtypes.allowed) allowed += (allowed.empty() ? "" : " or ") + std::string(to_string(d));
      throw CaseFileError(source, t->name, "dtype is " + std::string(to_string(t->dtype)) + " but op '" +
                                               schema.op + "' needs " + allowed);
    }
    if (t->shape.size() != spec.shape.size())
      throw CaseFileError(source, t->name, "shape " + shape_string(t->shape) + " has " +
                                               std::to_string(t->shape.size()) + " dims but op '" +
                                               schema.op + "' needs " + std::to_string(spec.shape.size()));
    for (std::size_t i = 0; i < spec.shape.size(); ++i) {
      const Dim& dim = spec.shape[i];
      const std::int64_t got = t->shape[i];
      const std::string where = "dim " + std::to_string(i);
      if (!dim.is_symbol()) {
        if (got != dim.value)
          throw CaseFileError(source, t->name, where + " is " + std::to_string(got) + " but op '" +
                                                   schema.op + "' needs " + std::to_string(dim.value));
        continue;
      }
      const auto [it, inserted] = bindings.emplace(dim.symbol, got);
      if (inserted) {
        origin[dim.symbol] = "tensor '" + printable(t->name) + "' dim " + std::to_string(i);
      } else if (it->second != got) {
        throw CaseFileError(source, t->name, where + " (" + dim.symbol + ") is " + std::to_string(got) +
                                                 " but " + dim.symbol + " = " + std::to_string(it->second) +
                                                 " from " + origin[dim.symbol]);
      }
    }
  }
  if (!schema.allow_extra) {
    for (const Tensor& t : case_file.tensors) {
      const bool named = std::any_of(schema.tensors.begin(), schema.tensors.end(),
                                     [&](const TensorSpec& s) { return s.name == t.name; });
      if (!named) throw CaseFileError(source, t.name, "not a tensor of op '" + schema.op + "'");
    }
  }
  return bindings;
}

}  // namespace dsa
