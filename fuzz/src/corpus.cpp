// Fuzz cases ↔ case files (the op schemas of op_cases.hpp, so `dsa-oracle check` reads a corpus
// file too), and the corpus replay. Tensors carry the inputs exactly as the kernel saw them (cache
// bytes included); what found the case travels under parameter "fuzz".
#include "dsa/corpus.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "dsa/error.hpp"
#include "dsa/mutants.hpp"
#include "dsa/op_cases.hpp"

namespace dsa::fuzz {

namespace {

using nlohmann::json;

// The fuzz cases are the op_cases.hpp cases plus what the fuzzer adds (split count, logits row
// stride, profile, seed); the file is the op's case file (`dsa-oracle check` reads it) with the
// additions under parameter "fuzz".
SparseMlaDecodeCase to_op_case(const DecodeCase& c) {
  SparseMlaDecodeCase o;
  o.B = c.B;
  o.S_q = c.S_q;
  o.H = c.H;
  o.mode = c.mode;
  o.cache = c.primary.cache;
  o.block_table = c.primary.block_table;
  o.max_blocks = c.primary.max_blocks;
  o.indices = c.primary.indices;
  o.topk = c.primary.topk;
  o.topk_length = c.primary.lengths;
  if (c.extra) {
    o.extra_cache = c.extra->cache;
    o.extra_block_table = c.extra->block_table;
    o.extra_max_blocks = c.extra->max_blocks;
    o.extra_indices = c.extra->indices;
    o.extra_topk = c.extra->topk;
    o.extra_topk_length = c.extra->lengths;
  }
  o.q = c.q;
  o.sink = c.sink;
  o.sm_scale = c.sm_scale;
  o.reader = c.reader;
  o.conventions = c.conventions;
  return o;
}

DecodeCase from_op_case(SparseMlaDecodeCase&& o) {
  DecodeCase c;
  c.B = o.B;
  c.S_q = o.S_q;
  c.H = o.H;
  c.mode = o.mode;
  c.primary.cache = std::move(o.cache);
  c.primary.block_table = std::move(o.block_table);
  c.primary.max_blocks = o.mode == IndexMode::logical ? o.max_blocks : 0;
  c.primary.indices = std::move(o.indices);
  c.primary.topk = o.topk;
  c.primary.lengths = std::move(o.topk_length);
  if (o.extra_cache && o.extra_topk > 0) {
    c.extra.emplace();
    c.extra->cache = std::move(*o.extra_cache);
    c.extra->block_table = std::move(o.extra_block_table);
    c.extra->max_blocks = o.mode == IndexMode::logical ? o.extra_max_blocks : 0;
    c.extra->indices = std::move(o.extra_indices);
    c.extra->topk = o.extra_topk;
    c.extra->lengths = std::move(o.extra_topk_length);
  }
  c.q = std::move(o.q);
  c.sink = std::move(o.sink);
  c.sm_scale = o.sm_scale;
  c.reader = o.reader;
  c.conventions = o.conventions;
  return c;
}

SparseMlaPrefillCase to_op_case(const PrefillCase& c) {
  SparseMlaPrefillCase o;
  o.S_q = c.S_q;
  o.H = c.H;
  o.kv = c.kv.cache;
  o.indices = c.kv.indices;
  o.topk = c.kv.topk;
  o.topk_length = c.kv.lengths;
  o.q = c.q;
  o.sink = c.sink;
  o.sm_scale = c.sm_scale;
  o.reader = c.reader;
  o.conventions = c.conventions;
  return o;
}

PrefillCase from_op_case(SparseMlaPrefillCase&& o) {
  PrefillCase c;
  c.S_q = o.S_q;
  c.H = o.H;
  c.kv.cache = std::move(o.kv);
  c.kv.indices = std::move(o.indices);
  c.kv.topk = o.topk;
  c.kv.lengths = std::move(o.topk_length);
  c.q = std::move(o.q);
  c.sink = std::move(o.sink);
  c.sm_scale = o.sm_scale;
  c.reader = o.reader;
  c.conventions = o.conventions;
  return c;
}

PagedMqaLogitsCase to_op_case(const PagedLogitsCase& c) {
  PagedMqaLogitsCase o;
  o.batch = c.B;
  o.next_n = c.N;
  o.num_heads = c.H;
  o.head_dim = c.D;
  o.q = c.q;
  o.q_fp8 = c.q_fp8;
  o.weights = c.weights;
  o.context_lens_kind = c.kind;
  o.context_lens = c.context_lens;
  o.block_table = c.block_table;
  o.max_blocks = c.max_blocks;
  o.cache = c.cache;
  o.k_scale_at = c.k_scale_at;
  o.max_ctx = c.max_ctx;
  return o;
}

PagedLogitsCase from_op_case(PagedMqaLogitsCase&& o, std::int64_t row_stride) {
  PagedLogitsCase c;
  c.B = o.batch;
  c.N = o.next_n;
  c.H = o.num_heads;
  c.D = o.head_dim;
  c.q = std::move(o.q);
  c.q_fp8 = o.q_fp8;
  c.weights = std::move(o.weights);
  c.kind = o.context_lens_kind;
  c.context_lens = std::move(o.context_lens);
  c.block_table = std::move(o.block_table);
  c.max_blocks = o.max_blocks;
  c.cache = std::move(o.cache);
  c.k_scale_at = o.k_scale_at;
  c.max_ctx = o.max_ctx;
  c.row_stride = std::max(row_stride, o.max_ctx);
  return c;
}

dsa::MqaLogitsCase to_op_case(const fuzz::MqaLogitsCase& c) {
  dsa::MqaLogitsCase o;
  o.seq_len = c.S;
  o.seq_len_kv = c.S_kv;
  o.num_heads = c.H;
  o.head_dim = c.D;
  o.q = c.q;
  o.q_fp8 = c.fp8;
  o.k = c.k;
  o.k_fp8 = c.fp8;
  o.k_scales = c.k_scales;
  o.weights = c.weights;
  o.ks = c.ks;
  o.ke = c.ke;
  o.k_scale_at = c.k_scale_at;
  return o;
}

fuzz::MqaLogitsCase from_op_case(dsa::MqaLogitsCase&& o, std::int64_t row_stride, const CaseFile& f) {
  if (o.q_fp8 != o.k_fp8)
    throw CaseFileError(f.source, "k", "the fuzzer's mqa_logits cases hold q and k in one fp8 format");
  fuzz::MqaLogitsCase c;
  c.S = o.seq_len;
  c.S_kv = o.seq_len_kv;
  c.H = o.num_heads;
  c.D = o.head_dim;
  c.q = std::move(o.q);
  c.fp8 = o.q_fp8;
  c.k = std::move(o.k);
  c.k_scales = std::move(o.k_scales);
  c.weights = std::move(o.weights);
  c.ks = std::move(o.ks);
  c.ke = std::move(o.ke);
  c.k_scale_at = o.k_scale_at;
  c.row_stride = std::max(row_stride, o.seq_len_kv);
  return c;
}

dsa::TopkCase to_op_case(const fuzz::TopkCase& c) {
  dsa::TopkCase o;
  o.rows = c.rows;
  o.width = c.row_stride;  // positions past the visible ranges are never read
  o.k = c.k;
  o.logits = c.logits;
  o.ranges = c.ranges;
  return o;
}

fuzz::TopkCase from_op_case(dsa::TopkCase&& o) {
  fuzz::TopkCase c;
  c.rows = o.rows;
  c.row_stride = o.width;
  c.k = o.k;
  c.logits = std::move(o.logits);
  c.ranges = std::move(o.ranges);
  return c;
}

}  // namespace

CaseFile to_case_file(const AnyCase& any, const CorpusMeta& meta) {
  json fz = {{"kernel", meta.kernel}, {"property", meta.property}, {"failure", meta.failure},
             {"reproduce", meta.reproduce}, {"rc_seed", meta.rc_seed}};
  std::visit(
      [&](const auto& c) {
        fz["profile"] = c.profile;
        fz["seed"] = c.seed;
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, DecodeCase> || std::is_same_v<C, PrefillCase>) fz["num_splits"] = c.num_splits;
        if constexpr (std::is_same_v<C, PagedLogitsCase> || std::is_same_v<C, fuzz::MqaLogitsCase>)
          fz["row_stride"] = c.row_stride;
      },
      any);
  const json judging = {{"fuzz", fz}};
  return std::visit([&](const auto& c) { return dsa::to_case_file(to_op_case(c), judging); }, any);
}

CorpusMeta corpus_meta(const CaseFile& f) {
  const json p = f.params();
  CorpusMeta m;
  if (!p.contains("fuzz") || !p.at("fuzz").is_object()) return m;
  const json& z = p.at("fuzz");
  m.kernel = z.value("kernel", "");
  m.property = z.value("property", "");
  m.failure = z.value("failure", "");
  m.reproduce = z.value("reproduce", "");
  m.rc_seed = z.value("rc_seed", std::uint64_t{0});
  return m;
}

AnyCase case_from_file(const CaseFile& f) {
  const json p = f.params();
  json fz = p.contains("fuzz") && p.at("fuzz").is_object() ? p.at("fuzz") : json::object();
  std::string profile;
  std::uint64_t seed = 0;
  int num_splits = 1;
  std::int64_t row_stride = 0;
  try {
    profile = fz.value("profile", "project");
    seed = fz.value("seed", std::uint64_t{0});
    num_splits = fz.value("num_splits", 1);
    row_stride = fz.value("row_stride", std::int64_t{0});
  } catch (const json::exception& e) {
    throw CaseFileError(f.source, "", fmt::format("bad parameter 'fuzz': {}", e.what()));
  }
  AnyCase out;
  switch (case_op(f)) {
    case Op::sparse_mla_decode: {
      DecodeCase c = from_op_case(sparse_mla_decode_case_from_file(f));
      c.num_splits = num_splits;
      out = std::move(c);
      break;
    }
    case Op::sparse_mla_prefill: {
      PrefillCase c = from_op_case(sparse_mla_prefill_case_from_file(f));
      c.num_splits = num_splits;
      out = std::move(c);
      break;
    }
    case Op::paged_mqa_logits: out = from_op_case(paged_mqa_logits_case_from_file(f), row_stride); break;
    case Op::mqa_logits: out = from_op_case(mqa_logits_case_from_file(f), row_stride, f); break;
    case Op::topk: out = from_op_case(topk_case_from_file(f)); break;
  }
  std::visit(
      [&](auto& c) {
        c.profile = profile;
        c.seed = seed;
      },
      out);
  return out;
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
