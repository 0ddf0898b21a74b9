// Sparse MLA problem descriptions: validation (SPEC §8) and the row-wise problem shared by gold
// and fast.
#include <fmt/format.h>

#include <cmath>
#include <string>

#include "dsa/error.hpp"
#include "sparse_mla_problem.hpp"

namespace dsa {

namespace {

// a·b·… for tensor sizes; an overflow is an error on the first argument that makes it overflow.
std::int64_t elems(const char* name, std::initializer_list<std::int64_t> dims) {
  std::int64_t n = 1;
  for (const std::int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n))
      throw InvalidArgument(name, "the element count of its shape overflows int64");
  }
  return n;
}

template <class T>
void require_size(std::span<T> s, const char* name, std::int64_t need, const char* shape) {
  if (static_cast<std::int64_t>(s.size()) < need)
    throw InvalidArgument(name, fmt::format("holds {} elements but {} needs {}", s.size(), shape, need));
}

template <class T>
void require_optional_size(std::span<T> s, const char* name, std::int64_t need, const char* shape) {
  if (!s.empty()) require_size(s, name, need, shape);
}

void check_sm_scale(float sm_scale) {
  if (!std::isfinite(sm_scale))
    throw InvalidArgument("sm_scale", fmt::format("must be finite (0 selects D_qk^-1/2) (got {})", sm_scale));
}

// One selection (primary or extra) of the decode problem. `prefix` is "" or "extra_".
void check_selection(const SparseMlaDecodeParams& p, const MlaCacheView& cache, std::span<const std::int32_t> block_table,
                     std::int64_t max_blocks, std::span<const std::int32_t> indices, std::int32_t topk,
                     std::span<const std::int32_t> topk_length, const std::string& prefix) {
  const std::string cache_name = prefix + "cache";
  validate(cache, cache_name.c_str());
  if (topk < 0) throw InvalidArgument(prefix + "topk", fmt::format("must be ≥ 0 (got {})", topk));
  const std::string ind = prefix + "indices", len = prefix + "topk_length", bt = prefix + "block_table",
                    mb = prefix + "max_blocks";
  require_size(indices, ind.c_str(), elems(ind.c_str(), {p.B, p.S_q, topk}), "[B][S_q][topk]");
  require_optional_size(topk_length, len.c_str(), p.B, "[B]");
  if (p.index_mode == IndexMode::physical) {
    if (!block_table.empty())
      throw InvalidArgument(bt, "is given but index_mode is physical (block tables are for logical mode)");
  } else {
    if (max_blocks < 0) throw InvalidArgument(mb, fmt::format("must be ≥ 0 (got {})", max_blocks));
    require_size(block_table, bt.c_str(), elems(bt.c_str(), {p.B, max_blocks}), "[B][max_blocks]");
  }
}

void check_outputs(const SparseMlaOutputs& o, std::int64_t T, std::int32_t H, int D_v) {
  require_size(o.out, "out", elems("out", {T, H, D_v}), "[T][H][D_v]");
  require_optional_size(o.lse, "lse", elems("lse", {T, H}), "[T][H]");
  require_optional_size(o.max_logits, "max_logits", elems("max_logits", {T, H}), "[T][H]");
}

}  // namespace

MlaCacheView dense_bf16_kv(std::span<const std::uint16_t> rows, std::int64_t num_rows, int dim_qk) {
  if (num_rows < 0 || num_rows > INT32_MAX)
    throw InvalidArgument("num_rows", fmt::format("must be in [0, 2^31) (got {})", num_rows));
  MlaCacheGeometry g = MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, num_rows > 0 ? 1 : 0,
                                                static_cast<std::int32_t>(num_rows > 0 ? num_rows : 1), dim_qk);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(rows.data());
  return {g, std::span<const std::uint8_t>(bytes, rows.size() * 2), {}};
}

float effective_sm_scale(float sm_scale, int dim_qk) {
  return sm_scale != 0.0f ? sm_scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim_qk)));
}

void validate(const SparseMlaDecodeParams& p) {
  if (p.B < 0) throw InvalidArgument("B", fmt::format("must be ≥ 0 (got {})", p.B));
  if (p.S_q < 1) throw InvalidArgument("S_q", fmt::format("must be ≥ 1 (got {})", p.S_q));
  if (p.H < 1) throw InvalidArgument("H", fmt::format("must be ≥ 1 (got {})", p.H));
  check_selection(p, p.cache, p.block_table, p.max_blocks, p.indices, p.topk, p.topk_length, "");
  const int D_qk = p.cache.geo.dim_qk();
  require_size(p.q, "q", elems("q", {p.B, p.S_q, p.H, D_qk}), "[B][S_q][H][D_qk]");
  if (p.extra_topk < 0) throw InvalidArgument("extra_topk", fmt::format("must be ≥ 0 (got {})", p.extra_topk));
  if (p.extra_topk > 0) {
    check_selection(p, p.extra_cache, p.extra_block_table, p.extra_max_blocks, p.extra_indices, p.extra_topk,
                    p.extra_topk_length, "extra_");
    if (p.extra_cache.geo.dim_qk() != D_qk)
      throw InvalidArgument("extra_cache.layout",
                            fmt::format("{} (D_qk {}) does not match the primary cache's {} (D_qk {}): V32 pairs "
                                        "with V32 or BF16-576, MODEL1 with MODEL1, MODEL1_SPLIT or BF16-512",
                                        to_string(p.extra_cache.geo.layout), p.extra_cache.geo.dim_qk(),
                                        to_string(p.cache.geo.layout), D_qk));
  }
  require_optional_size(p.attn_sink, "attn_sink", p.H, "[H]");
  check_sm_scale(p.sm_scale);
}

void validate(const SparseMlaPrefillParams& p) {
  if (p.S_q < 0) throw InvalidArgument("S_q", fmt::format("must be ≥ 0 (got {})", p.S_q));
  if (p.H < 1) throw InvalidArgument("H", fmt::format("must be ≥ 1 (got {})", p.H));
  validate(p.kv, "kv");
  const int D_qk = p.kv.geo.dim_qk();
  require_size(p.q, "q", elems("q", {p.S_q, p.H, D_qk}), "[S_q][H][D_qk]");
  if (p.topk < 0) throw InvalidArgument("topk", fmt::format("must be ≥ 0 (got {})", p.topk));
  require_size(p.indices, "indices", elems("indices", {p.S_q, p.topk}), "[S_q][topk]");
  require_optional_size(p.topk_length, "topk_length", p.S_q, "[S_q]");
  require_optional_size(p.attn_sink, "attn_sink", p.H, "[H]");
  check_sm_scale(p.sm_scale);
}

void validate(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o) {
  validate(p);
  check_outputs(o, p.B * p.S_q, p.H, mla_dim_v());
}

void validate(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o) {
  validate(p);
  check_outputs(o, p.S_q, p.H, mla_dim_v());
}

namespace detail {

MlaProblem make_problem(const SparseMlaDecodeParams& p) {
  MlaProblem m;
  m.q = p.q.data();
  m.T = p.B * p.S_q;
  m.H = p.H;
  m.D_qk = p.cache.geo.dim_qk();
  m.D_v = mla_dim_v();
  auto selection = [&](const MlaCacheView& cache, std::span<const std::int32_t> bt, std::int64_t max_blocks,
                       std::span<const std::int32_t> indices, std::int32_t topk, std::span<const std::int32_t> len) {
    MlaSelection s;
    s.cache = cache;
    s.mode = p.index_mode;
    s.block_table = bt.empty() ? nullptr : bt.data();
    s.max_blocks = p.index_mode == IndexMode::logical ? max_blocks : 0;
    s.indices = indices.data();
    s.topk = topk;
    s.topk_length = len.empty() ? nullptr : len.data();
    s.rows_per_batch = p.S_q;
    return s;
  };
  m.sel[0] = selection(p.cache, p.block_table, p.max_blocks, p.indices, p.topk, p.topk_length);
  m.num_sel = 1;
  if (p.extra_topk > 0) {
    m.sel[1] = selection(p.extra_cache, p.extra_block_table, p.extra_max_blocks, p.extra_indices, p.extra_topk,
                         p.extra_topk_length);
    m.num_sel = 2;
  }
  m.sink = p.attn_sink.empty() ? nullptr : p.attn_sink.data();
  m.sm_scale = effective_sm_scale(p.sm_scale, m.D_qk);
  m.reader = p.reader;
  m.conv = p.conventions;
  return m;
}

MlaProblem make_problem(const SparseMlaPrefillParams& p) {
  MlaProblem m;
  m.q = p.q.data();
  m.T = p.S_q;
  m.H = p.H;
  m.D_qk = p.kv.geo.dim_qk();
  m.D_v = mla_dim_v();
  MlaSelection& s = m.sel[0];
  s.cache = p.kv;
  s.mode = IndexMode::physical;
  s.indices = p.indices.data();
  s.topk = p.topk;
  s.topk_length = p.topk_length.empty() ? nullptr : p.topk_length.data();
  s.rows_per_batch = 1;
  m.num_sel = 1;
  m.sink = p.attn_sink.empty() ? nullptr : p.attn_sink.data();
  m.sm_scale = effective_sm_scale(p.sm_scale, m.D_qk);
  m.reader = p.reader;
  m.conv = p.conventions;
  return m;
}

}  // namespace detail
}  // namespace dsa
