// RapidCheck generators of fuzz specs (issue 6.2), drawn inside a kernel's promise (its profile,
// reader models, split parameter and tile). Shapes, page sizes, tables, index values, patterns and
// lengths shrink; the bulk data comes from one noShrink seed, so a counterexample shrinks to a few
// rows fast and replays from RapidCheck's reproduce string. Default sizes are small on purpose:
// fuzzing throughput is what finds bugs.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <vector>

#include "dsa/fuzz_cases.hpp"
#include "dsa/kernel_under_test.hpp"

namespace dsa::fuzz {

// Page sizes every paged generator draws from (filtered by layout rules: preshuffle needs P % 16).
inline constexpr std::int32_t kPageSizes[] = {1, 2, 16, 53, 61, 64, 69, 256};

// The largest split count the generators draw (and the splits property tries).
inline constexpr int kMaxSplits = 17;

// The key-tile width the generators aim lengths and masked chunks at: the kernel's claim, else
// the CPU fast path's kMlaTileSlots.
int tile_of(const KernelUnderTest& k);

rc::Gen<DecodeSpec> gen_decode_spec(const KernelUnderTest& k);
rc::Gen<PrefillSpec> gen_prefill_spec(const KernelUnderTest& k);
rc::Gen<PagedLogitsSpec> gen_paged_logits_spec(const KernelUnderTest& k);
rc::Gen<MqaLogitsSpec> gen_mqa_logits_spec(const KernelUnderTest& k);
rc::Gen<TopkSpec> gen_topk_spec(const KernelUnderTest& k);

// Building blocks, exposed for tests of the generators themselves.
rc::Gen<std::int32_t> gen_page_tokens(bool multiple_of_16);
// Index values of one selection over `range` valid values: valid values (duplicates likely when
// range is small) mixed with the int32 edge set of invalid_index_edges(range).
rc::Gen<std::int32_t> gen_index_value(std::int64_t range);
// topk_length values for a selection of `topk` slots aimed at a tile of `tile` slots.
rc::Gen<std::int32_t> gen_length(std::int32_t topk, int tile, bool out_of_range);

}  // namespace dsa::fuzz
