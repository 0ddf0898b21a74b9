// Top-k of indexer logits (SPEC §6.4): the reference selection and the acceptance predicate
// that judges any top-k kernel.
//
// Order of logits: value descending, where NaN ranks above +inf (as torch.topk does, so a NaN
// logit — a corrupted input — is always selected and never silently dropped) and −0 equals +0;
// equal values (all NaNs are equal) rank by position ascending. −inf is an ordinary value: a
// visible position with logit −inf can be selected.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dsa/visible_range.hpp"

namespace dsa {

// −1: a ranks below b; 0: equal rank as values; +1: a ranks above b (NaN highest).
int topk_compare_values(float a, float b);

// For each row r: the positions of the min(k, |visible_r|) highest-ranked visible logits,
// ordered (logit desc, position asc), then −1 in the remaining slots.
// logits [rows][row_stride]; ranges [rows] within [0, row_stride); out [rows][k] int32.
// OpenMP over rows; nth_element + sort per row. Validates first (dsa::InvalidArgument).
void topk_indices(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                  std::span<const VisibleRange> ranges, std::int64_t k, std::span<std::int32_t> out);

enum class TopkRule : std::uint8_t {
  none,
  masked_position,    // a slot holds a position outside the row's visible range (not −1)
  duplicate,          // a position appears twice
  wrong_count,        // fewer than min(k, |visible|) positions
  wrong_padding,      // a padding slot (index ≥ min(k, |visible|)) does not hold −1, or −1 precedes a position
  below_kth_largest,  // a selected position's logit ranks below the k-th largest visible logit
  missing_larger,     // a visible position whose logit ranks strictly above the k-th largest is missing
  order,              // require_stable_order: adjacent slots not in (logit desc, position asc) order
};
const char* to_string(TopkRule);

struct TopkCheckOptions {
  // The kernel claims the reference order (logit desc, position asc) of its selected positions.
  // Which of several tied positions at the k-th value it selects stays free.
  bool require_stable_order = false;
};

struct TopkVerdict {
  bool accepted = true;
  TopkRule rule = TopkRule::none;
  std::int64_t row = -1;   // first rejected row
  std::int64_t slot = -1;  // offending slot, or −1 when the rule concerns the whole row
  std::string reason;      // names the row, the slot and the rule; empty when accepted
  explicit operator bool() const { return accepted; }
};

// The SPEC §6.4 acceptance predicate, rows in order, first violation reported. With
// m = min(k, |visible_r|), row r of `indices` [rows][k] is accepted iff slots [0, m) hold m
// distinct visible positions, slots [m, k) hold −1, every selected logit ranks ≥ the m-th
// largest visible logit T, and every visible position ranking strictly above T is selected
// (plus the order rule when asked). `logits` are the values the selection is judged against.
TopkVerdict check_topk(std::span<const float> logits, std::int64_t rows, std::int64_t row_stride,
                       std::span<const VisibleRange> ranges, std::int64_t k, std::span<const std::int32_t> indices,
                       const TopkCheckOptions& options = {});

}  // namespace dsa
