// paged_mqa_logits cases (SPEC §6.2): random generation, the case-file schema and conversions, and
// the check of a case file's kernel logits.
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <numeric>

#include "case_common.hpp"
#include "dsa/error.hpp"
#include "dsa/layouts.hpp"
#include "dsa/op_cases.hpp"

namespace dsa {

using detail::json;

PagedMqaLogitsParams PagedMqaLogitsCase::params(std::span<float> logits, std::int64_t row_stride) const {
  PagedMqaLogitsParams p;
  p.batch = batch;
  p.next_n = next_n;
  p.num_heads = num_heads;
  p.head_dim = head_dim;
  p.q = q;
  p.q_fp8 = q_fp8;
  p.weights = weights;
  p.context_lens_kind = context_lens_kind;
  p.context_lens = context_lens;
  p.block_table = block_table;
  p.max_blocks = max_blocks;
  p.cache = cache.view();
  p.reader_layout = cache.geo.layout;
  p.k_scale_at = k_scale_at;
  p.max_ctx = max_ctx;
  p.logits = logits;
  p.logits_row_stride = row_stride;
  return p;
}

PagedMqaLogitsCase random_paged_mqa_logits_case(const RandomCaseSpec& s) {
  using namespace detail;
  Rng rng(s.seed * 0x9E3779B97F4A7C15ull + 0x1D3A);
  PagedMqaLogitsCase c;
  c.batch = s.B.value_or(uniform_int(rng, 1, 3));
  c.next_n = s.next_n.value_or(s.S_q.value_or(uniform_int(rng, 1, 3)));
  c.num_heads = s.H.value_or(pick<std::int64_t>(rng, {1, 2, 4, 8, 16, 32}));
  c.head_dim = s.head_dim.value_or(pick<std::int64_t>(rng, {32, 64, 128}));
  const IndexKLayout layout = s.layout ? index_k_layout_from(*s.layout, "layout")
                                       : pick<IndexKLayout>(rng, {IndexKLayout::standard, IndexKLayout::preshuffle});
  const auto page = static_cast<std::int32_t>(s.page_tokens.value_or(
      layout == IndexKLayout::preshuffle ? pick<std::int64_t>(rng, {16, 64}) : pick<std::int64_t>(rng, {1, 7, 16, 64})));
  const Fp8Format fp8 = random_fp8_format(rng, s.fp8);
  c.q_fp8 = random_fp8_format(rng, s.fp8);
  c.context_lens_kind = s.context_lens ? context_lens_from(*s.context_lens, "context_lens")
                                       : pick<ContextLens>(rng, {ContextLens::per_sequence, ContextLens::per_row});
  c.k_scale_at = s.k_scale_at ? k_scale_at_from(*s.k_scale_at, "k_scale_at")
                              : pick<KScaleAt>(rng, {KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16});
  const std::int64_t ctx_max = s.max_ctx.value_or(uniform_int(rng, 1, 320));
  const bool per_row = c.context_lens_kind == ContextLens::per_row;
  c.context_lens.resize(static_cast<std::size_t>(per_row ? c.rows() : c.batch));
  for (auto& x : c.context_lens) x = static_cast<std::int32_t>(rng() % 6 == 0 ? uniform_int(rng, 0, 2) : uniform_int(rng, 0, ctx_max));
  // Visible ends, then the logits width.
  std::vector<std::int64_t> seq_end(static_cast<std::size_t>(c.batch), 0);
  std::int64_t widest = 0;
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t i = 0; i < c.next_n; ++i) {
      const std::int64_t e = per_row ? c.context_lens[static_cast<std::size_t>(b * c.next_n + i)]
                                     : c.context_lens[static_cast<std::size_t>(b)] - c.next_n + i + 1;
      seq_end[static_cast<std::size_t>(b)] = std::max(seq_end[static_cast<std::size_t>(b)], e);
      widest = std::max(widest, e);
    }
  c.max_ctx = s.max_ctx ? *s.max_ctx : widest + uniform_int(rng, 0, 20);
  if (rng() % 8 == 0 && !s.max_ctx) c.max_ctx = std::max<std::int64_t>(0, widest - uniform_int(rng, 0, 8));  // clipped rows
  for (auto& e : seq_end) e = std::min(e, c.max_ctx);
  // Distinct pages per sequence, shuffled through the pool, with two spare (poisoned) blocks.
  std::int64_t needed = 0;
  std::vector<std::int64_t> pages(static_cast<std::size_t>(c.batch));
  for (std::int64_t b = 0; b < c.batch; ++b) {
    pages[static_cast<std::size_t>(b)] = (seq_end[static_cast<std::size_t>(b)] + page - 1) / page;
    needed += pages[static_cast<std::size_t>(b)];
  }
  c.max_blocks = (pages.empty() ? 0 : *std::max_element(pages.begin(), pages.end())) + uniform_int(rng, 0, 2);
  const std::int64_t num_blocks = s.num_blocks.value_or(needed + 2);
  IndexKGeometry g = IndexKGeometry::packed(layout, fp8, num_blocks, page, static_cast<std::int32_t>(c.head_dim));
  g.block_stride_bytes += 4 * pick<std::int64_t>(rng, {0, 0, 16});
  c.cache = IndexKCacheBuffer(g);
  std::vector<std::int32_t> pool(static_cast<std::size_t>(num_blocks));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  c.block_table.resize(static_cast<std::size_t>(c.batch * c.max_blocks));
  const std::int32_t garbage[] = {-1, INT_MIN, INT_MAX, static_cast<std::int32_t>(num_blocks)};
  std::size_t next = 0;
  std::vector<std::int64_t> slots;
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t j = 0; j < c.max_blocks; ++j) {
      auto& e = c.block_table[static_cast<std::size_t>(b * c.max_blocks + j)];
      if (j < pages[static_cast<std::size_t>(b)] && next < pool.size()) {
        e = pool[next++];
        for (std::int64_t t = 0; t < page; ++t) slots.push_back(std::int64_t{e} * page + t);
      } else {
        e = garbage[rng() % 4];
      }
    }
  // K rows of varying amplitude, quantized by the project's writer into the used pages.
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(slots.size() * static_cast<std::size_t>(c.head_dim));
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const float amp = std::exp2(static_cast<float>(uniform_int(rng, -3, 3)));
    for (std::int64_t d = 0; d < c.head_dim; ++d) k[i * static_cast<std::size_t>(c.head_dim) + static_cast<std::size_t>(d)] = normal(rng) * amp;
  }
  const std::uint8_t nan8 = fp8_nan_code(fp8);
  std::fill(c.cache.bytes.begin(), c.cache.bytes.end(), nan8);  // unused blocks and past-the-end tokens: NaN
  for (std::int64_t blk = 0; blk < num_blocks; ++blk)
    for (std::int64_t t = 0; t < page; ++t)
      store_f32(c.cache.bytes.data() + blk * g.block_stride_bytes + layout::IndexK::scale_offset(page, g.head_dim, t),
                std::numeric_limits<float>::quiet_NaN());
  IndexKQuantParams qp;
  qp.ue8m0_scale = rng() % 2 == 0;
  quantize_index_k(k, static_cast<std::int64_t>(slots.size()), slots, c.cache.span(), qp);
  if (s.poison) {
    // Tokens past each sequence's visible end in its last page: NaN again.
    for (std::int64_t b = 0; b < c.batch; ++b) {
      const std::int64_t end = seq_end[static_cast<std::size_t>(b)];
      for (std::int64_t t = end; t < pages[static_cast<std::size_t>(b)] * page; ++t) {
        const std::int64_t blk = c.block_table[static_cast<std::size_t>(b * c.max_blocks + t / page)];
        std::uint8_t* pg = c.cache.bytes.data() + blk * g.block_stride_bytes;
        for (int d = 0; d < g.head_dim; ++d) pg[layout::IndexK::value_offset(layout, g.head_dim, t % page, d)] = nan8;
        store_f32(pg + layout::IndexK::scale_offset(page, g.head_dim, t % page), std::numeric_limits<float>::quiet_NaN());
      }
    }
  }
  c.q = random_fp8(rng, c.rows() * c.num_heads * c.head_dim, c.q_fp8, static_cast<float>(pick<int>(rng, {1, 4, 16})));
  c.weights.resize(static_cast<std::size_t>(c.rows() * c.num_heads));
  for (auto& w : c.weights) w = normal(rng) * 0.25f;
  return c;
}

namespace detail {

Schema paged_mqa_logits_schema() {
  Schema s;
  s.op = "paged_mqa_logits";
  s.tensors = {
      {"q", {DType::U8, DType::F8_E4M3}, {"B", "N", "H", "D"}},
      {"weights", DType::F32, {"BN", "H"}},
      {"context_lens", DType::I32, {"B"}, false},  // [B] (per_sequence) or [B][N] (per_row)
      {"block_table", DType::I32, {"B", "max_blocks"}},
      {"kv_cache", DType::U8, {"kv_cache_bytes"}},
      {"logits", DType::F32, {"BN", "row_stride"}, false},
  };
  return s;
}

}  // namespace detail

CaseFile to_case_file(const PagedMqaLogitsCase& c, const nlohmann::json& judging) {
  using namespace detail;
  CaseFile f;
  json p = {{"op", "paged_mqa_logits"},
            {"q_fp8", to_string(c.q_fp8)},
            {"context_lens", to_string(c.context_lens_kind)},
            {"k_scale_at", to_string(c.k_scale_at)},
            {"max_ctx", c.max_ctx},
            {"kv_cache", index_k_geometry_to_json(c.cache.geo)}};
  add_tensor(f, "q", {c.batch, c.next_n, c.num_heads, c.head_dim}, c.q);
  add_tensor(f, "weights", {c.rows(), c.num_heads}, c.weights);
  if (c.context_lens_kind == ContextLens::per_row) add_tensor(f, "context_lens", {c.batch, c.next_n}, c.context_lens);
  else add_tensor(f, "context_lens", {c.batch}, c.context_lens);
  add_tensor(f, "block_table", {c.batch, c.max_blocks}, c.block_table);
  add_tensor(f, "kv_cache", {static_cast<std::int64_t>(c.cache.bytes.size())}, c.cache.bytes);
  p.update(judging);
  f.set_params(p);
  return f;
}

PagedMqaLogitsCase paged_mqa_logits_case_from_file(const CaseFile& f) {
  using namespace detail;
  const json p = op_params(f, Op::paged_mqa_logits);
  reject_unknown_tensors(f, paged_mqa_logits_schema());
  PagedMqaLogitsCase c;
  if (!p.contains("kv_cache")) fail(f, "kv_cache", "its geometry parameter 'kv_cache' is missing");
  c.cache = index_k_cache_from(f, p.at("kv_cache"), "kv_cache");
  Schema schema = without_caches(paged_mqa_logits_schema());
  std::erase_if(schema.tensors, [](const TensorSpec& t) { return t.name == "context_lens"; });
  const Bindings b = check_schema(f, schema, {{"D", c.cache.geo.head_dim}});
  c.batch = b.at("B");
  c.next_n = b.at("N");
  c.num_heads = b.at("H");
  c.head_dim = b.at("D");
  if (b.at("BN") != c.batch * c.next_n)
    fail(f, "weights", fmt::format("has {} rows but B·N = {}·{} = {}", b.at("BN"), c.batch, c.next_n, c.batch * c.next_n));
  try {
    c.q_fp8 = fp8_from(get_string(f, p, "q_fp8").value_or("e4m3fn"), "q_fp8");
    c.k_scale_at = k_scale_at_from(get_string(f, p, "k_scale_at").value_or("after_head_sum"), "k_scale_at");
    const Tensor& cl = f.at("context_lens");
    const auto kind = get_string(f, p, "context_lens");
    c.context_lens_kind = kind ? context_lens_from(*kind, "context_lens")
                               : cl.shape.size() == 2 ? ContextLens::per_row : ContextLens::per_sequence;
  } catch (const CaseFileError&) {
    throw;
  } catch (const InvalidArgument& e) {
    fail(f, "", e.what());
  }
  if (f.at("q").dtype == DType::F8_E4M3 && c.q_fp8 != Fp8Format::e4m3fn)
    fail(f, "q", "is F8_E4M3 but parameter q_fp8 says e4m3fnuz");
  const bool per_row = c.context_lens_kind == ContextLens::per_row;
  if (per_row) f.expect("context_lens", DType::I32, {c.batch, c.next_n});
  else f.expect("context_lens", DType::I32, {c.batch});
  c.q = f.get<std::uint8_t>("q", f.at("q").dtype);
  c.weights = f.get<float>("weights");
  c.context_lens = f.get<std::int32_t>("context_lens");
  c.block_table = f.get<std::int32_t>("block_table");
  c.max_blocks = b.at("max_blocks");
  const auto max_ctx = get_int(f, p, "max_ctx");
  if (!max_ctx) fail(f, "", "parameter 'max_ctx' is missing (the logits width)");
  c.max_ctx = *max_ctx;
  if (c.max_ctx < 0 || (c.max_ctx > 0 && c.rows() > (std::int64_t{1} << 31) / c.max_ctx))
    fail(f, "", fmt::format("parameter 'max_ctx' = {} is negative or makes the logits too large to judge", c.max_ctx));
  try {
    std::vector<float> scratch(static_cast<std::size_t>(c.rows() * c.max_ctx));
    validate(c.params(scratch, c.max_ctx));
  } catch (const InvalidArgument& e) {
    fail(f, "", e.what());
  }
  return c;
}

namespace detail {

CaseResult check_paged_mqa_logits(const CaseFile& in, const CaseFile& outs, const json& params) {
  const PagedMqaLogitsCase c = paged_mqa_logits_case_from_file(in);
  if (!outs.find("logits"))
    fail(outs, "logits", "is missing: the case holds no kernel outputs to check (write them as \"logits\")");
  const Tensor& t = outs.at("logits");
  if (t.dtype != DType::F32 || t.shape.size() != 2)
    fail(outs, "logits", fmt::format("must be F32 [B·N][row_stride] (got {} of rank {})", to_string(t.dtype), t.shape.size()));
  if (t.shape[0] != c.rows())
    fail(outs, "logits", fmt::format("has {} rows but B·N = {}", t.shape[0], c.rows()));
  if (t.shape[1] < c.max_ctx)
    fail(outs, "logits", fmt::format("rows hold {} positions but max_ctx is {}", t.shape[1], c.max_ctx));
  const std::vector<float> logits = outs.get<float>("logits");
  return judge_paged_mqa_logits(c.params(), logits, t.shape[1], judge_options_from_json(params, Op::paged_mqa_logits));
}

CaseFile make_paged_mqa_logits(const RandomCaseSpec& spec, const std::string& outputs, bool gold_tensors) {
  const PagedMqaLogitsCase c = random_paged_mqa_logits_case(spec);
  json judging = default_judging_json(Op::paged_mqa_logits);
  judging["seed"] = spec.seed;
  CaseFile f = to_case_file(c, judging);
  const std::int64_t W = c.max_ctx;
  if (outputs == "gold" || outputs == "fast") {
    std::vector<float> logits(static_cast<std::size_t>(c.rows() * W), f32_from_bits(kSentinelF32));
    const PagedMqaLogitsParams p = c.params(logits, W);
    if (outputs == "gold") gold::paged_mqa_logits(p);
    else fast::paged_mqa_logits(p);
    add_tensor(f, "logits", {c.rows(), W}, logits);
  } else if (outputs != "none") {
    throw InvalidArgument("outputs", fmt::format("unknown value '{}' (known: none, gold, fast)", outputs));
  }
  if (gold_tensors) {
    const LogitsBudget b = paged_mqa_logits_budget(c.params(), kernel_precision("bf16p", Op::paged_mqa_logits));
    add_tensor(f, "gold.logits", {c.rows(), W}, b.gold);
  }
  return f;
}

}  // namespace detail

}  // namespace dsa
