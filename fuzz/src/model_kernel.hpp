// Private to fuzz/: a plain-loop sparse MLA decode written the way a GPU kernel is — masked slots
// stay in their key tile as −inf logits, an online softmax over fixed tiles of the slot axis,
// split-KV partials (o_i, lse_i) and a combine — so that the bug classes of such kernels can be
// reproduced as *variants* of it (mutants.cpp). The correct variant is itself a kernel under test
// ("model.tiled") and must pass every property, which is what makes a mutant's kill meaningful.
#pragma once

#include "dsa/sparse_mla.hpp"

namespace dsa::fuzz::model {

// The steps where tiled kernels go wrong. The correct kernel is Variant{}.
struct Variant {
  // Skip a tile whose running max is still −inf (every slot so far masked); without the guard
  // the rescale computes exp(−inf − (−inf)) = NaN.
  bool guard_masked_tile = true;
  // Apply the attention sink to each split's partial instead of once after the combine.
  bool sink_per_split = false;
  // Weight each partial by exp(lse_i − lse) in the combine (without: partials are summed).
  bool rescale_in_combine = true;
  // An empty chunk's partial lse: −inf (SPEC §4), or 0 (the bug).
  bool empty_split_lse_neg_inf = true;
};

inline constexpr int kTileSlots = 16;  // a tile narrower than the fast path's, so both are exercised

// A variant is a compile-time parameter, so the correct instantiation carries no bug switch.
inline constexpr Variant kCorrect{};
inline constexpr Variant kNoMaskedTileGuard{false, false, true, true};
inline constexpr Variant kSinkPerSplit{true, true, true, true};
inline constexpr Variant kCombineWithoutRescale{true, false, false, true};
inline constexpr Variant kEmptySplitLseZero{true, false, true, false};

// Decode (SPEC §4) with `num_splits` ≥ 1 chunks. Validates first. Writes out, lse and max_logits
// (each when given). Instantiated for the five variants above.
template <Variant V>
void decode(const SparseMlaDecodeParams& p, const SparseMlaOutputs& o, int num_splits);
// Prefill (SPEC §5) as the decode of S_q sequences of one row each (the same problem).
template <Variant V>
void prefill(const SparseMlaPrefillParams& p, const SparseMlaOutputs& o, int num_splits);

}  // namespace dsa::fuzz::model
