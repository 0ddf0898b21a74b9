// The mutant catalog: one real bug class per kernel, as a wrapper around a correct kernel (which
// stays untouched) or as a variant of the GPU-style model kernel (model_kernel.hpp).
#include "dsa/mutants.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "dsa/mla_slots.hpp"
#include "model_kernel.hpp"

namespace dsa::fuzz {

namespace {

std::size_t sz(std::int64_t n) { return static_cast<std::size_t>(n); }

KernelUnderTest decode_mutant(std::string name, std::string bug, DecodeFn fn) {
  KernelUnderTest k;
  k.name = "mutant." + std::move(name);
  k.op = Op::sparse_mla_decode;
  k.mutant = true;
  k.bug = std::move(bug);
  k.precision = kernel_precision("fp32p-rn", Op::sparse_mla_decode);
  k.claims.tile_slots = kMlaTileSlots;
  k.takes_num_splits = true;
  k.mla_readers = {ReaderModel::staged_bf16(), ReaderModel::flashmla_sm90(), ReaderModel::flashmla_sm100(),
                   ReaderModel::exact_fp32()};
  k.decode = std::move(fn);
  return k;
}

void fused(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
  sparse_mla_decode_fast(p, o, {MlaFastAlgo::fused, ctx.num_splits});
}

template <model::Variant V>
KernelUnderTest model_mutant(std::string name, std::string bug) {
  auto k = decode_mutant(std::move(name), std::move(bug), [](const SparseMlaDecodeParams& p,
                                                             const SparseMlaOutputs& o, const RunContext& ctx) {
    model::decode<V>(p, o, ctx.num_splits);
  });
  k.claims.tile_slots = model::kTileSlots;
  return k;
}

// Whether row r (sequence b) of a decode call has any valid slot, primary or extra.
bool row_has_valid_slot(const SparseMlaDecodeParams& p, std::int64_t r) {
  const std::int64_t b = r / p.S_q;
  auto any = [&](const MlaCacheView& c, std::span<const std::int32_t> bt, std::int64_t max_blocks,
                 std::span<const std::int32_t> idx, std::int32_t topk, std::span<const std::int32_t> len) {
    const std::int32_t elig = eligible_slots(topk, len.empty() ? nullptr : len.data(), b);
    const std::int32_t* row = p.index_mode == IndexMode::logical ? bt.data() + b * max_blocks : nullptr;
    for (std::int32_t j = 0; j < elig; ++j)
      if (resolve_slot(p.index_mode, idx[sz(r * topk + j)], row, max_blocks, c.geo.num_blocks, c.geo.page_tokens)
              .valid())
        return true;
    return false;
  };
  return any(p.cache, p.block_table, p.max_blocks, p.indices, p.topk, p.topk_length) ||
         (p.extra_topk > 0 &&
          any(p.extra_cache, p.extra_block_table, p.extra_max_blocks, p.extra_indices, p.extra_topk, p.extra_topk_length));
}

KernelUnderTest paged_mutant(std::string name, std::string bug, PagedLogitsFn fn) {
  KernelUnderTest k;
  k.name = "mutant." + std::move(name);
  k.op = Op::paged_mqa_logits;
  k.mutant = true;
  k.bug = std::move(bug);
  k.precision = kernel_precision("fp32p-rn", Op::paged_mqa_logits);
  k.k_scale_at = {KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16};
  k.paged_logits = std::move(fn);
  return k;
}

KernelUnderTest topk_mutant(std::string name, std::string bug, TopkFn fn) {
  KernelUnderTest k;
  k.name = "mutant." + std::move(name);
  k.op = Op::topk;
  k.mutant = true;
  k.bug = std::move(bug);
  k.topk = std::move(fn);
  return k;
}

}  // namespace

std::vector<KernelUnderTest> mutant_catalog() {
  std::vector<KernelUnderTest> m;

  // 1. exp(−inf − (−inf)) = NaN when a key tile is fully masked before any valid key.
  m.push_back(model_mutant<model::kNoMaskedTileGuard>(
      "nan_masked_leading_tile",
      "online softmax rescales a fully masked leading tile: exp(−inf − (−inf)) = NaN poisons the row"));

  // 2. −1 dereferenced: the address base + i·token_bytes is formed before the validity check,
  //    so index −1 reads the token just before the cache (emulated by a block prepended to a
  //    copy of the cache, holding what lies before the allocation: here the pool's last block).
  m.push_back(decode_mutant(
      "minus_one_reads_previous_row", "index −1 is not masked: it reads the token before the cache buffer",
      [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
        if (p.index_mode != IndexMode::physical || p.cache.geo.num_blocks == 0) return fused(p, o, ctx);
        const auto& g = p.cache.geo;
        MlaCacheGeometry g2 = g;
        g2.num_blocks += 1;
        MlaCacheBuffer ext(g2);
        auto copy_block = [&](std::int64_t from, std::int64_t to) {
          std::memcpy(ext.values.data() + to * g.block_stride_bytes, p.cache.values.data() + from * g.block_stride_bytes,
                      sz(g.page_bytes()));
          if (g.layout == MlaLayout::MODEL1_SPLIT)
            std::memcpy(ext.scales.data() + to * g.scale_block_stride_bytes,
                        p.cache.scales.data() + from * g.scale_block_stride_bytes, sz(g.scale_page_bytes()));
        };
        copy_block(g.num_blocks - 1, 0);
        for (std::int64_t b = 0; b < g.num_blocks; ++b) copy_block(b, b + 1);
        // Every non-negative index moves one block up (valid ones stay valid, invalid ones stay
        // past the end); −1 lands on the last token of the prepended block.
        const std::int64_t P = g.page_tokens;
        std::vector<std::int32_t> idx(p.indices.begin(), p.indices.end());
        for (auto& i : idx) {
          if (i == -1) i = static_cast<std::int32_t>(P - 1);
          else if (i >= 0) i = static_cast<std::int32_t>(std::min<std::int64_t>(std::int64_t{i} + P, INT32_MAX));
        }
        SparseMlaDecodeParams p2 = p;
        p2.cache = ext.view();
        p2.indices = idx;
        fused(p2, o, ctx);
      }));

  // 3. topk_length never read.
  m.push_back(decode_mutant("topk_length_ignored", "topk_length is ignored: slots past the length are attended",
                            [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
                              SparseMlaDecodeParams p2 = p;
                              p2.topk_length = {};
                              p2.extra_topk_length = {};
                              fused(p2, o, ctx);
                            }));

  // 4. lse returned in base 2 (exp2-based softmax) whatever the convention asks.
  m.push_back(decode_mutant("lse_base2", "lse is returned in base 2 (log2 of the sum) where natural log is required",
                            [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
                              SparseMlaDecodeParams p2 = p;
                              p2.conventions.lse_base = LseBase::two;
                              fused(p2, o, ctx);
                            }));

  // 5–7. Split-KV combine bugs, as variants of the model kernel.
  m.push_back(model_mutant<model::kSinkPerSplit>("sink_every_split",
                                                 "the attention sink divides every split's partial, not the combined row"));
  m.push_back(model_mutant<model::kCombineWithoutRescale>(
      "combine_without_rescale", "split combine sums the partial outputs without the exp(lse_i − lse) weights"));
  m.push_back(model_mutant<model::kEmptySplitLseZero>("empty_split_lse_zero",
                                                      "an empty split chunk reports lse = 0 instead of −inf"));

  // 8. Preshuffle writer, standard reader: the layout tag is ignored and bytes read as standard.
  m.push_back(paged_mutant("preshuffle_read_as_standard",
                           "the K cache's layout tag is ignored: preshuffled pages are read as standard",
                           [](const PagedMqaLogitsParams& p, const RunContext&) {
                             PagedMqaLogitsParams p2 = p;
                             p2.cache.geo.layout = IndexKLayout::standard;
                             p2.reader_layout = IndexKLayout::standard;
                             fast::paged_mqa_logits(p2);
                           }));

  // 9. e4m3fnuz bytes decoded with the e4m3fn table (values ×2, NaN code 0x80 read as −0).
  m.push_back(decode_mutant("fnuz_decoded_as_fn", "e4m3fnuz cache bytes are decoded as e4m3fn",
                            [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
                              SparseMlaDecodeParams p2 = p;
                              p2.cache.geo.fp8 = Fp8Format::e4m3fn;
                              p2.extra_cache.geo.fp8 = Fp8Format::e4m3fn;
                              fused(p2, o, ctx);
                            }));

  // 10. The reader rounds the fp32 scale to bf16 although it promises exact fp32 scales (only
  //     visible with the non-power-of-two scales of the fp32 writer policy).
  {
    auto k = decode_mutant("scale_rounded_to_bf16",
                           "the reader rounds non-power-of-two fp32 scales to bf16 while promising fp32 scales",
                           [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
                             SparseMlaDecodeParams p2 = p;
                             p2.reader.scale = ScaleAs::bf16;
                             fused(p2, o, ctx);
                           });
    k.mla_readers = {ReaderModel::staged_bf16(), ReaderModel::exact_fp32()};
    m.push_back(k);
  }

  // 11. Causal visibility off by one: t < ctx − N + i instead of t ≤ ctx − N + i.
  m.push_back(paged_mutant("causal_off_by_one", "row i of a sequence sees t < ctx − N + i (one key short)",
                           [](const PagedMqaLogitsParams& p, const RunContext&) {
                             std::vector<std::int32_t> ctx(p.context_lens.begin(), p.context_lens.end());
                             for (auto& c : ctx) c = std::max(c - 1, 0);
                             PagedMqaLogitsParams p2 = p;
                             p2.context_lens = ctx;
                             fast::paged_mqa_logits(p2);
                           }));

  // 12. The extra cache's positions resolved through the primary cache's block table.
  m.push_back(decode_mutant("extra_through_primary_table",
                            "extra-cache positions are resolved through the primary block table",
                            [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
                              SparseMlaDecodeParams p2 = p;
                              if (p.index_mode == IndexMode::logical && p.extra_topk > 0) {
                                p2.extra_block_table = p.block_table;
                                p2.extra_max_blocks = p.max_blocks;
                              }
                              fused(p2, o, ctx);
                            }));

  // 13. Duplicate indices collapsed (a "unique" pass before the gather).
  m.push_back(decode_mutant(
      "duplicates_deduplicated", "duplicate selected indices are attended once instead of once per occurrence",
      [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
        std::vector<std::int32_t> idx(p.indices.begin(), p.indices.end());
        for (std::int64_t r = 0; r < p.B * p.S_q; ++r) {
          std::set<std::int32_t> seen;
          for (std::int32_t j = 0; j < p.topk; ++j) {
            auto& i = idx[sz(r * p.topk + j)];
            if (i >= 0 && !seen.insert(i).second) i = -1;
          }
        }
        SparseMlaDecodeParams p2 = p;
        p2.indices = idx;
        fused(p2, o, ctx);
      }));

  // 14. Rows without a valid slot skipped entirely (early exit before the epilogue).
  m.push_back(decode_mutant(
      "empty_rows_unwritten", "rows with no valid slot exit early and never write out or lse",
      [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext& ctx) {
        std::vector<std::uint16_t> out(o.out.size());
        std::vector<float> lse(o.lse.size()), ml(o.max_logits.size());
        fused(p, SparseMlaOutputs{out, lse, ml}, ctx);
        const std::int64_t Dv = 512;
        for (std::int64_t r = 0; r < p.B * p.S_q; ++r) {
          if (!row_has_valid_slot(p, r)) continue;
          std::copy_n(out.begin() + r * p.H * Dv, p.H * Dv, o.out.begin() + r * p.H * Dv);
          if (!o.lse.empty()) std::copy_n(lse.begin() + r * p.H, p.H, o.lse.begin() + r * p.H);
          if (!o.max_logits.empty()) std::copy_n(ml.begin() + r * p.H, p.H, o.max_logits.begin() + r * p.H);
        }
      }));

  // 15. Top-k that ranks NaN lowest (a comparator that is false for NaN), dropping corrupted logits.
  m.push_back(topk_mutant("topk_nan_ranked_lowest", "NaN logits rank below every value instead of above",
                          [](std::span<const float> logits, std::int64_t rows, std::int64_t stride,
                             std::span<const VisibleRange> ranges, std::int64_t k, std::span<std::int32_t> out,
                             const RunContext&) {
                            std::vector<float> l(logits.begin(), logits.end());
                            for (auto& x : l)
                              if (std::isnan(x)) x = -std::numeric_limits<float>::infinity();
                            topk_indices(l, rows, stride, ranges, k, out);
                          }));

  // 16. Top-k that treats −inf as "masked" and pads with −1 instead of selecting visible −inf logits.
  m.push_back(topk_mutant("topk_drops_neg_inf", "visible −inf logits are treated as masked and never selected",
                          [](std::span<const float> logits, std::int64_t rows, std::int64_t stride,
                             std::span<const VisibleRange> ranges, std::int64_t k, std::span<std::int32_t> out,
                             const RunContext&) {
                            topk_indices(logits, rows, stride, ranges, k, out);
                            for (std::int64_t r = 0; r < rows; ++r) {
                              std::vector<std::int32_t> kept;
                              for (std::int64_t j = 0; j < k; ++j) {
                                const std::int32_t i = out[sz(r * k + j)];
                                if (i >= 0 && logits[sz(r * stride + i)] == -std::numeric_limits<float>::infinity())
                                  continue;
                                if (i >= 0) kept.push_back(i);
                              }
                              for (std::int64_t j = 0; j < k; ++j)
                                out[sz(r * k + j)] = j < static_cast<std::int64_t>(kept.size()) ? kept[sz(j)] : -1;
                            }
                          }));

  // 17. Split count picked from a runtime counter (load-dependent heuristics), so two identical
  //     calls reduce in different orders.
  {
    auto k = decode_mutant("nondeterministic_splits",
                           "the split count changes from call to call, so reruns differ in the last bits",
                           [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext&) {
                             static std::atomic<int> calls{0};
                             sparse_mla_decode_fast(p, o, {MlaFastAlgo::fused, 1 + (calls++ % 3)});
                           });
    k.takes_num_splits = false;
    k.claims.num_splits = 0;
    m.push_back(k);
  }

  // 18. Slots gathered in physical-address order (for locality), so the reduction order depends
  //     on where blocks happen to live.
  {
    auto k = decode_mutant(
        "gather_sorted_by_address", "selected slots are reduced in physical-address order, not slot order",
        [](const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, const RunContext&) {
          std::vector<std::int32_t> idx(p.indices.begin(), p.indices.end());
          const auto& g = p.cache.geo;
          for (std::int64_t r = 0; r < p.B * p.S_q; ++r) {
            const std::int64_t b = r / p.S_q;
            const std::int32_t elig = eligible_slots(p.topk, p.topk_length.empty() ? nullptr : p.topk_length.data(), b);
            const std::int32_t* row = p.index_mode == IndexMode::logical ? p.block_table.data() + b * p.max_blocks : nullptr;
            auto key = [&](std::int32_t i) -> std::int64_t {
              const auto ref = resolve_slot(p.index_mode, i, row, p.max_blocks, g.num_blocks, g.page_tokens);
              return ref.valid() ? ref.block * g.page_tokens + ref.t : INT64_MAX;
            };
            auto begin = idx.begin() + r * p.topk;
            std::stable_sort(begin, begin + elig, [&](std::int32_t a, std::int32_t c) { return key(a) < key(c); });
          }
          SparseMlaDecodeParams p2 = p;
          p2.indices = idx;
          sparse_mla_decode_fast(p2, o, {MlaFastAlgo::fused, 1});
        });
    k.takes_num_splits = false;
    k.claims.num_splits = 1;
    m.push_back(k);
  }

  // 19. A logits kernel that promises the `all` contract but leaves masked positions unwritten.
  m.push_back(paged_mutant("logits_masked_unwritten",
                           "masked logits positions are left unwritten although the kernel promises to write −inf",
                           [](const PagedMqaLogitsParams& p, const RunContext&) {
                             std::vector<float> scratch(p.logits.begin(), p.logits.end());
                             PagedMqaLogitsParams p2 = p;
                             p2.logits = scratch;
                             fast::paged_mqa_logits(p2);
                             for (std::int64_t r = 0; r < p.rows(); ++r) {
                               const VisibleRange v = visible_range(p, r);
                               for (std::int64_t t = v.begin; t < v.end; ++t)
                                 p.logits[sz(r * p.logits_row_stride + t)] = scratch[sz(r * p.logits_row_stride + t)];
                             }
                           }));

  // 20. Non-paged logits with an inclusive end: row i sees [ks, ke].
  {
    KernelUnderTest k;
    k.name = "mutant.mqa_ke_inclusive";
    k.op = Op::mqa_logits;
    k.mutant = true;
    k.bug = "row i sees [ks, ke] (inclusive end) instead of [ks, ke)";
    k.precision = kernel_precision("fp32p-rn", Op::mqa_logits);
    k.k_scale_at = {KScaleAt::after_head_sum, KScaleAt::per_head, KScaleAt::on_k_bf16};
    k.logits = [](const MqaLogitsParams& p, const RunContext&) {
      std::vector<std::int32_t> ke(p.ke.begin(), p.ke.end());
      for (auto& e : ke) e = static_cast<std::int32_t>(std::min<std::int64_t>(std::int64_t{e} + 1, p.seq_len_kv));
      MqaLogitsParams p2 = p;
      p2.ke = ke;
      fast::mqa_logits(p2);
    };
    m.push_back(k);
  }
  return m;
}

}  // namespace dsa::fuzz
