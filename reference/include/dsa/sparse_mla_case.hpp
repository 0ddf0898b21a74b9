// Owning sparse MLA problems: the tensors a SparseMlaDecodeParams / SparseMlaPrefillParams views,
// held in one struct whose params() views them. One definition for the oracle's case files and
// self-checks, the fuzzers' corpus conversions and the tests.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/sparse_mla.hpp"

namespace dsa {

struct SparseMlaDecodeCase {
  std::int64_t B = 1, S_q = 1;
  std::int32_t H = 1;
  IndexMode mode = IndexMode::physical;
  MlaCacheBuffer cache{MlaCacheGeometry::packed(MlaLayout::V32, Fp8Format::e4m3fn, 0, 1)};
  std::vector<std::int32_t> block_table;
  std::int64_t max_blocks = 0;
  std::vector<std::int32_t> indices;
  std::int32_t topk = 0;
  std::vector<std::int32_t> topk_length;
  std::optional<MlaCacheBuffer> extra_cache;
  std::vector<std::int32_t> extra_block_table;
  std::int64_t extra_max_blocks = 0;
  std::vector<std::int32_t> extra_indices;
  std::int32_t extra_topk = 0;
  std::vector<std::int32_t> extra_topk_length;
  std::vector<std::uint16_t> q;
  std::vector<float> sink;
  float sm_scale = 0.0f;
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;

  std::int64_t T() const { return B * S_q; }
  SparseMlaDecodeParams params() const {
    SparseMlaDecodeParams p;
    p.q = q;
    p.B = B;
    p.S_q = S_q;
    p.H = H;
    p.index_mode = mode;
    p.cache = cache.view();
    p.block_table = block_table;
    p.max_blocks = max_blocks;
    p.indices = indices;
    p.topk = topk;
    p.topk_length = topk_length;
    if (extra_cache) {
      p.extra_cache = extra_cache->view();
      p.extra_block_table = extra_block_table;
      p.extra_max_blocks = extra_max_blocks;
      p.extra_indices = extra_indices;
      p.extra_topk = extra_topk;
      p.extra_topk_length = extra_topk_length;
    }
    p.attn_sink = sink;
    p.sm_scale = sm_scale;
    p.reader = reader;
    p.conventions = conventions;
    return p;
  }
};

struct SparseMlaPrefillCase {
  std::int64_t S_q = 1;
  std::int32_t H = 1;
  MlaCacheBuffer kv{MlaCacheGeometry::packed(MlaLayout::BF16, Fp8Format::e4m3fn, 0, 1)};
  std::vector<std::int32_t> indices;
  std::int32_t topk = 0;
  std::vector<std::int32_t> topk_length;
  std::vector<std::uint16_t> q;
  std::vector<float> sink;
  float sm_scale = 0.0f;
  ReaderModel reader = ReaderModel::staged_bf16();
  MlaConventions conventions;

  SparseMlaPrefillParams params() const {
    SparseMlaPrefillParams p;
    p.q = q;
    p.S_q = S_q;
    p.H = H;
    p.kv = kv.view();
    p.indices = indices;
    p.topk = topk;
    p.topk_length = topk_length;
    p.attn_sink = sink;
    p.sm_scale = sm_scale;
    p.reader = reader;
    p.conventions = conventions;
    return p;
  }
};

}  // namespace dsa
