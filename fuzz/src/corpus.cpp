// Fuzz cases ↔ case files, and the corpus replay. Tensors carry the inputs exactly as the kernel
// saw them (cache bytes included); the parameters JSON carries shapes, geometry, conventions and
// what found the case, under the keys documented inline.
#include "dsa/corpus.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "dsa/error.hpp"
#include "dsa/mutants.hpp"

namespace dsa::fuzz {

namespace {

using nlohmann::json;

template <class E>
struct EnumNames;
#define DSA_ENUM_NAMES(E, ...)                                                        \
  template <>                                                                        \
  struct EnumNames<E> {                                                              \
    static constexpr std::pair<E, const char*> values[] = {__VA_ARGS__};             \
  };
DSA_ENUM_NAMES(MlaLayout, {MlaLayout::V32, "V32"}, {MlaLayout::MODEL1, "MODEL1"},
               {MlaLayout::MODEL1_SPLIT, "MODEL1_SPLIT"}, {MlaLayout::BF16, "BF16"})
DSA_ENUM_NAMES(Fp8Format, {Fp8Format::e4m3fn, "e4m3fn"}, {Fp8Format::e4m3fnuz, "e4m3fnuz"})
DSA_ENUM_NAMES(IndexMode, {IndexMode::physical, "physical"}, {IndexMode::logical, "logical"})
DSA_ENUM_NAMES(ScaleAs, {ScaleAs::fp32, "fp32"}, {ScaleAs::bf16, "bf16"}, {ScaleAs::e8m0_floor, "e8m0_floor"})
DSA_ENUM_NAMES(ProductAs, {ProductAs::fp32, "fp32"}, {ProductAs::bf16, "bf16"})
DSA_ENUM_NAMES(OperandAs, {OperandAs::bf16, "bf16"}, {OperandAs::fp32, "fp32"})
DSA_ENUM_NAMES(LseEmpty, {LseEmpty::pos_inf, "+inf"}, {LseEmpty::neg_inf, "-inf"})
DSA_ENUM_NAMES(LseBase, {LseBase::e, "e"}, {LseBase::two, "2"})
DSA_ENUM_NAMES(IndexKLayout, {IndexKLayout::standard, "standard"}, {IndexKLayout::preshuffle, "preshuffle"})
DSA_ENUM_NAMES(ContextLens, {ContextLens::per_sequence, "per_sequence"}, {ContextLens::per_row, "per_row"})
DSA_ENUM_NAMES(KScaleAt, {KScaleAt::after_head_sum, "after_head_sum"}, {KScaleAt::per_head, "per_head"},
               {KScaleAt::on_k_bf16, "on_k_bf16"})
#undef DSA_ENUM_NAMES

template <class E>
std::string name_of(E e) {
  for (const auto& [v, n] : EnumNames<E>::values)
    if (v == e) return n;
  return "?";
}

template <class E>
E enum_of(const json& j, const std::string& key, const std::string& source) {
  const std::string s = j.at(key).get<std::string>();
  for (const auto& [v, n] : EnumNames<E>::values)
    if (s == n) return v;
  throw CaseFileError(source, "", fmt::format("parameter '{}' has unknown value '{}'", key, s));
}

template <class T>
void put(CaseFile& f, const std::string& name, const std::vector<T>& v, DType dtype = dtype_of<T>) {
  f.add<T>(name, {static_cast<std::int64_t>(v.size())}, std::span<const T>(v), dtype);
}

template <class T>
std::vector<T> get(const CaseFile& f, const std::string& name, DType dtype = dtype_of<T>) {
  if (!f.find(name)) return {};
  return f.get<T>(name, dtype);
}

json reader_json(const ReaderModel& m) {
  return {{"scale", name_of(m.scale)}, {"product", name_of(m.product)}, {"operand", name_of(m.operand)}};
}
ReaderModel reader_from(const json& j, const std::string& src) {
  return {enum_of<ScaleAs>(j, "scale", src), enum_of<ProductAs>(j, "product", src),
          enum_of<OperandAs>(j, "operand", src)};
}
json conv_json(const MlaConventions& c) {
  return {{"lse_empty", name_of(c.lse_empty)}, {"sink_in_lse", c.sink_in_lse}, {"lse_base", name_of(c.lse_base)}};
}
MlaConventions conv_from(const json& j, const std::string& src) {
  return {enum_of<LseEmpty>(j, "lse_empty", src), j.at("sink_in_lse").get<bool>(), enum_of<LseBase>(j, "lse_base", src)};
}

json mla_geo_json(const MlaCacheGeometry& g) {
  return {{"layout", name_of(g.layout)}, {"fp8", name_of(g.fp8)}, {"num_blocks", g.num_blocks},
          {"page_tokens", g.page_tokens}, {"block_stride_bytes", g.block_stride_bytes},
          {"scale_block_stride_bytes", g.scale_block_stride_bytes}, {"bf16_dim_qk", g.bf16_dim_qk}};
}
MlaCacheGeometry mla_geo_from(const json& j, const std::string& src) {
  MlaCacheGeometry g;
  g.layout = enum_of<MlaLayout>(j, "layout", src);
  g.fp8 = enum_of<Fp8Format>(j, "fp8", src);
  g.num_blocks = j.at("num_blocks").get<std::int64_t>();
  g.page_tokens = j.at("page_tokens").get<std::int32_t>();
  g.block_stride_bytes = j.at("block_stride_bytes").get<std::int64_t>();
  g.scale_block_stride_bytes = j.at("scale_block_stride_bytes").get<std::int64_t>();
  g.bf16_dim_qk = j.at("bf16_dim_qk").get<int>();
  return g;
}

// One MLA selection under tensor prefix `pre` ("", "extra_", "kv_").
json put_selection(CaseFile& f, const std::string& pre, const MlaSelectionCase& s) {
  put(f, pre + "cache_values", s.cache.values);
  if (!s.cache.scales.empty()) put(f, pre + "cache_scales", s.cache.scales);
  put(f, pre + "block_table", s.block_table);
  put(f, pre + "indices", s.indices);
  if (!s.lengths.empty()) put(f, pre + "topk_length", s.lengths);
  return {{"cache", mla_geo_json(s.cache.geo)}, {"max_blocks", s.max_blocks}, {"topk", s.topk},
          {"lengths", !s.lengths.empty()}};
}

MlaSelectionCase get_selection(const CaseFile& f, const std::string& pre, const json& j) {
  MlaSelectionCase s;
  s.cache = MlaCacheBuffer(mla_geo_from(j.at("cache"), f.source));
  auto values = get<std::uint8_t>(f, pre + "cache_values");
  auto scales = get<std::uint8_t>(f, pre + "cache_scales");
  if (values.size() != s.cache.values.size() || scales.size() != s.cache.scales.size())
    throw CaseFileError(f.source, pre + "cache_values", "byte count does not match the cache geometry");
  s.cache.values = std::move(values);
  s.cache.scales = std::move(scales);
  s.block_table = get<std::int32_t>(f, pre + "block_table");
  s.max_blocks = j.at("max_blocks").get<std::int64_t>();
  s.indices = get<std::int32_t>(f, pre + "indices");
  s.topk = j.at("topk").get<std::int32_t>();
  if (j.at("lengths").get<bool>()) s.lengths = get<std::int32_t>(f, pre + "topk_length");
  return s;
}

std::string op_from_params(const CaseFile& f) { return f.params().at("op").get<std::string>(); }

}  // namespace

CaseFile to_case_file(const AnyCase& any, const CorpusMeta& meta) {
  CaseFile f;
  json p;
  p["op"] = to_string(op_of(any));
  p["fuzz"] = {{"kernel", meta.kernel}, {"property", meta.property}, {"failure", meta.failure},
               {"reproduce", meta.reproduce}, {"rc_seed", meta.rc_seed}};
  std::visit(
      [&](const auto& c) {
        using C = std::decay_t<decltype(c)>;
        p["profile"] = c.profile;
        p["seed"] = c.seed;
        if constexpr (std::is_same_v<C, DecodeCase>) {
          p.update({{"B", c.B}, {"S_q", c.S_q}, {"H", c.H}, {"index_mode", name_of(c.mode)},
                    {"sm_scale", c.sm_scale}, {"reader", reader_json(c.reader)},
                    {"conventions", conv_json(c.conventions)}, {"num_splits", c.num_splits}});
          p["primary"] = put_selection(f, "", c.primary);
          if (c.extra) p["extra"] = put_selection(f, "extra_", *c.extra);
          put(f, "q", c.q, DType::BF16);
          if (!c.sink.empty()) put(f, "attn_sink", c.sink);
        } else if constexpr (std::is_same_v<C, PrefillCase>) {
          p.update({{"S_q", c.S_q}, {"H", c.H}, {"sm_scale", c.sm_scale}, {"reader", reader_json(c.reader)},
                    {"conventions", conv_json(c.conventions)}, {"num_splits", c.num_splits}});
          p["kv"] = put_selection(f, "kv_", c.kv);
          put(f, "q", c.q, DType::BF16);
          if (!c.sink.empty()) put(f, "attn_sink", c.sink);
        } else if constexpr (std::is_same_v<C, PagedLogitsCase>) {
          const auto& g = c.cache.geo;
          p.update({{"B", c.B}, {"N", c.N}, {"H", c.H}, {"D", c.D}, {"q_fp8", name_of(c.q_fp8)},
                    {"context_lens_kind", name_of(c.kind)}, {"max_blocks", c.max_blocks},
                    {"k_scale_at", name_of(c.k_scale_at)}, {"max_ctx", c.max_ctx}, {"row_stride", c.row_stride},
                    {"cache",
                     {{"layout", name_of(g.layout)}, {"fp8", name_of(g.fp8)}, {"num_blocks", g.num_blocks},
                      {"page_tokens", g.page_tokens}, {"head_dim", g.head_dim},
                      {"block_stride_bytes", g.block_stride_bytes}}}});
          put(f, "q", c.q);
          put(f, "weights", c.weights);
          put(f, "context_lens", c.context_lens);
          put(f, "block_table", c.block_table);
          put(f, "cache", c.cache.bytes);
        } else if constexpr (std::is_same_v<C, MqaLogitsCase>) {
          p.update({{"S", c.S}, {"S_kv", c.S_kv}, {"H", c.H}, {"D", c.D}, {"fp8", name_of(c.fp8)},
                    {"k_scale_at", name_of(c.k_scale_at)}, {"row_stride", c.row_stride}});
          put(f, "q", c.q);
          put(f, "k", c.k);
          put(f, "k_scales", c.k_scales);
          put(f, "weights", c.weights);
          put(f, "ks", c.ks);
          put(f, "ke", c.ke);
        } else {
          p.update({{"rows", c.rows}, {"row_stride", c.row_stride}, {"k", c.k}});
          put(f, "logits", c.logits);
          std::vector<std::int64_t> ranges;
          for (const auto& v : c.ranges) {
            ranges.push_back(v.begin);
            ranges.push_back(v.end);
          }
          put(f, "ranges", ranges);
        }
      },
      any);
  f.set_params(p);
  return f;
}

CorpusMeta corpus_meta(const CaseFile& f) {
  const json p = f.params();
  CorpusMeta m;
  if (!p.contains("fuzz")) return m;
  const json& z = p.at("fuzz");
  m.kernel = z.value("kernel", "");
  m.property = z.value("property", "");
  m.failure = z.value("failure", "");
  m.reproduce = z.value("reproduce", "");
  m.rc_seed = z.value("rc_seed", std::uint64_t{0});
  return m;
}

AnyCase case_from_file(const CaseFile& f) {
  try {
    const json p = f.params();
    const std::string op = op_from_params(f);
    const std::string& src = f.source;
    if (op == "sparse_mla_decode") {
      DecodeCase c;
      c.profile = p.value("profile", "project");
      c.seed = p.value("seed", std::uint64_t{0});
      c.B = p.at("B");
      c.S_q = p.at("S_q");
      c.H = p.at("H");
      c.mode = enum_of<IndexMode>(p, "index_mode", src);
      c.sm_scale = p.at("sm_scale");
      c.reader = reader_from(p.at("reader"), src);
      c.conventions = conv_from(p.at("conventions"), src);
      c.num_splits = p.at("num_splits");
      c.primary = get_selection(f, "", p.at("primary"));
      if (p.contains("extra")) c.extra = get_selection(f, "extra_", p.at("extra"));
      c.q = f.get<std::uint16_t>("q", DType::BF16);
      c.sink = get<float>(f, "attn_sink");
      return c;
    }
    if (op == "sparse_mla_prefill") {
      PrefillCase c;
      c.profile = p.value("profile", "project");
      c.seed = p.value("seed", std::uint64_t{0});
      c.S_q = p.at("S_q");
      c.H = p.at("H");
      c.sm_scale = p.at("sm_scale");
      c.reader = reader_from(p.at("reader"), src);
      c.conventions = conv_from(p.at("conventions"), src);
      c.num_splits = p.at("num_splits");
      c.kv = get_selection(f, "kv_", p.at("kv"));
      c.q = f.get<std::uint16_t>("q", DType::BF16);
      c.sink = get<float>(f, "attn_sink");
      return c;
    }
    if (op == "paged_mqa_logits") {
      PagedLogitsCase c;
      c.profile = p.value("profile", "project");
      c.seed = p.value("seed", std::uint64_t{0});
      c.B = p.at("B");
      c.N = p.at("N");
      c.H = p.at("H");
      c.D = p.at("D");
      c.q_fp8 = enum_of<Fp8Format>(p, "q_fp8", src);
      c.kind = enum_of<ContextLens>(p, "context_lens_kind", src);
      c.max_blocks = p.at("max_blocks");
      c.k_scale_at = enum_of<KScaleAt>(p, "k_scale_at", src);
      c.max_ctx = p.at("max_ctx");
      c.row_stride = p.at("row_stride");
      const json& g = p.at("cache");
      IndexKGeometry geo;
      geo.layout = enum_of<IndexKLayout>(g, "layout", src);
      geo.fp8 = enum_of<Fp8Format>(g, "fp8", src);
      geo.num_blocks = g.at("num_blocks");
      geo.page_tokens = g.at("page_tokens");
      geo.head_dim = g.at("head_dim");
      geo.block_stride_bytes = g.at("block_stride_bytes");
      c.cache = IndexKCacheBuffer(geo);
      auto bytes = f.get<std::uint8_t>("cache");
      if (bytes.size() != c.cache.bytes.size())
        throw CaseFileError(src, "cache", "byte count does not match the cache geometry");
      c.cache.bytes = std::move(bytes);
      c.q = f.get<std::uint8_t>("q");
      c.weights = f.get<float>("weights");
      c.context_lens = f.get<std::int32_t>("context_lens");
      c.block_table = f.get<std::int32_t>("block_table");
      return c;
    }
    if (op == "mqa_logits") {
      MqaLogitsCase c;
      c.profile = p.value("profile", "project");
      c.seed = p.value("seed", std::uint64_t{0});
      c.S = p.at("S");
      c.S_kv = p.at("S_kv");
      c.H = p.at("H");
      c.D = p.at("D");
      c.fp8 = enum_of<Fp8Format>(p, "fp8", src);
      c.k_scale_at = enum_of<KScaleAt>(p, "k_scale_at", src);
      c.row_stride = p.at("row_stride");
      c.q = f.get<std::uint8_t>("q");
      c.k = f.get<std::uint8_t>("k");
      c.k_scales = f.get<float>("k_scales");
      c.weights = f.get<float>("weights");
      c.ks = f.get<std::int32_t>("ks");
      c.ke = f.get<std::int32_t>("ke");
      return c;
    }
    if (op == "topk") {
      TopkCase c;
      c.profile = p.value("profile", "project");
      c.seed = p.value("seed", std::uint64_t{0});
      c.rows = p.at("rows");
      c.row_stride = p.at("row_stride");
      c.k = p.at("k");
      c.logits = f.get<float>("logits");
      const auto r = f.get<std::int64_t>("ranges");
      if (r.size() != static_cast<std::size_t>(2 * c.rows) ||
          c.logits.size() != static_cast<std::size_t>(c.rows * c.row_stride))
        throw CaseFileError(src, "ranges", "sizes do not match rows and row_stride");
      for (std::size_t i = 0; i < r.size(); i += 2) c.ranges.push_back({r[i], r[i + 1]});
      return c;
    }
    throw CaseFileError(src, "", fmt::format("parameter 'op' is '{}', not a fuzzed op", op));
  } catch (const json::exception& e) {
    throw CaseFileError(f.source, "", fmt::format("bad parameters: {}", e.what()));
  }
}

std::string write_corpus_case(const std::string& dir, const AnyCase& c, const CorpusMeta& meta) {
  const CaseFile f = to_case_file(c, meta);
  const auto bytes = serialize_case_file(f);
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a of the image: identical cases share a name
  for (std::uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
  std::string kernel = meta.kernel;
  std::replace(kernel.begin(), kernel.end(), '/', '_');
  std::replace(kernel.begin(), kernel.end(), '@', '_');
  std::filesystem::create_directories(dir);
  const std::string path = (std::filesystem::path(dir) / fmt::format("{}-{}-{}-{:016x}.safetensors", to_string(op_of(c)),
                                                                   kernel, meta.property, h))
                               .string();
  write_case_file(path, f);
  return path;
}

std::string default_corpus_dir() {
  const char* src = std::getenv("DSA_SOURCE_DIR");
  return (std::filesystem::path(src && *src ? src : ".") / "data" / "corpus").string();
}

namespace {

bool admits(const KernelUnderTest& k, const AnyCase& any) {
  if (k.op != op_of(any)) return false;
  if (const auto* d = std::get_if<DecodeCase>(&any))
    return std::find(k.mla_readers.begin(), k.mla_readers.end(), d->reader) != k.mla_readers.end();
  if (const auto* d = std::get_if<PrefillCase>(&any))
    return std::find(k.mla_readers.begin(), k.mla_readers.end(), d->reader) != k.mla_readers.end();
  if (const auto* d = std::get_if<PagedLogitsCase>(&any))
    return std::find(k.k_scale_at.begin(), k.k_scale_at.end(), d->k_scale_at) != k.k_scale_at.end();
  if (const auto* d = std::get_if<MqaLogitsCase>(&any))
    return std::find(k.k_scale_at.begin(), k.k_scale_at.end(), d->k_scale_at) != k.k_scale_at.end();
  return true;
}

}  // namespace

ReplayResult replay_corpus_file(const std::string& path) {
  ReplayResult r;
  r.path = path;
  const CaseFile f = read_case_file(path);
  const AnyCase c = case_from_file(f);
  const CorpusMeta meta = corpus_meta(f);
  r.op = op_of(c);
  for (const auto& k : correct_kernels()) {
    const bool recorded = meta.kernel == k.name || meta.kernel == fmt::format("{}/{}", to_string(k.op), k.name);
    if (!admits(k, c) || (k.profile.name != "project" && !recorded)) continue;
    ++r.kernels_run;
    const Verdict v = check(k, c);
    if (!v.pass) r.problems.push_back(fmt::format("{}: {} fails {}: {}", path, k.name, v.property, v.message));
  }
  for (const auto& k : mutant_catalog()) {
    if (k.name != meta.kernel && fmt::format("{}/{}", to_string(k.op), k.name) != meta.kernel) continue;
    if (k.op != r.op) continue;
    ++r.kernels_run;
    const Verdict v = check(k, c);
    if (v.pass) r.problems.push_back(fmt::format("{}: mutant {} no longer fails on its counterexample", path, k.name));
  }
  return r;
}

}  // namespace dsa::fuzz
