// Slot resolution of SPEC §3 for sparse MLA: a selected index → the cache token (block, t) it
// names, or invalid. The one definition used by gold, fast, the staged gather and the GPU
// kernels. All arithmetic is 64-bit, so no index value (INT_MIN … INT_MAX) can overflow, and the
// block table is read only at an entry that exists.
#pragma once

#include <cstdint>

#include "dsa/hd.hpp"

namespace dsa {

enum class IndexMode : std::uint8_t {
  physical,  // FlashMLA: index i names token (i / P, i % P) of the pool
  logical,   // SGLang / xkernels: position p of sequence b, through block_table[b][p / P]
};

inline const char* to_string(IndexMode m) { return m == IndexMode::physical ? "physical" : "logical"; }

// A cache token, or invalid (block < 0). Only a valid ref may be handed to a cache reader.
struct MlaTokenRef {
  std::int64_t block = -1;
  std::int32_t t = 0;
  DSA_HD constexpr bool valid() const { return block >= 0; }
};

// physical: valid iff 0 ≤ i < num_blocks·P.
DSA_HD constexpr MlaTokenRef resolve_physical(std::int32_t index, std::int64_t num_blocks,
                                              std::int32_t page_tokens) {
  const std::int64_t i = index;
  if (i < 0 || i >= num_blocks * page_tokens) return {};
  return {i / page_tokens, static_cast<std::int32_t>(i % page_tokens)};
}

// logical: valid iff 0 ≤ p < max_blocks·P and 0 ≤ block_table_row[p / P] < num_blocks.
// `block_table_row` points at the max_blocks entries of the row's sequence.
DSA_HD constexpr MlaTokenRef resolve_logical(std::int32_t position, const std::int32_t* block_table_row,
                                             std::int64_t max_blocks, std::int64_t num_blocks,
                                             std::int32_t page_tokens) {
  const std::int64_t p = position;
  if (p < 0 || p >= max_blocks * page_tokens) return {};
  const std::int64_t block = block_table_row[p / page_tokens];
  if (block < 0 || block >= num_blocks) return {};
  return {block, static_cast<std::int32_t>(p % page_tokens)};
}

DSA_HD constexpr MlaTokenRef resolve_slot(IndexMode mode, std::int32_t index, const std::int32_t* block_table_row,
                                          std::int64_t max_blocks, std::int64_t num_blocks,
                                          std::int32_t page_tokens) {
  return mode == IndexMode::physical
             ? resolve_physical(index, num_blocks, page_tokens)
             : resolve_logical(index, block_table_row, max_blocks, num_blocks, page_tokens);
}

// How many leading slots of a row may be valid: slot j is eligible iff j < topk_length (when
// lengths are given). A length outside [0, topk] is data, not an error: it is clamped.
DSA_HD constexpr std::int32_t eligible_slots(std::int32_t topk, const std::int32_t* topk_length, std::int64_t b) {
  if (topk_length == nullptr) return topk;
  const std::int32_t len = topk_length[b];
  return len < 0 ? 0 : (len > topk ? topk : len);
}

// Split-KV (SPEC §4): chunk `i` of `num_splits` contiguous chunks of the concatenated slot axis
// of `total_slots` slots (primary then extra): [begin, end), sizes differing by at most one.
struct SlotRange {
  std::int64_t begin;
  std::int64_t end;
};
DSA_HD constexpr SlotRange split_range(std::int64_t total_slots, int num_splits, int i) {
  return {total_slots * i / num_splits, total_slots * (i + 1) / num_splits};
}

}  // namespace dsa
