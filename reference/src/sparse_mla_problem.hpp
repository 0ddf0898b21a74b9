// Private to reference/: decode (SPEC §4) and prefill (SPEC §5) as one row-wise problem that gold
// and every fast variant consume. A row r has one query [H][D_qk] and one concatenated slot axis
// (primary slots, then extra slots); slot validity is resolve_slot() of mla_slots.hpp.
#pragma once

#include <cstdint>

#include "dsa/mla_slots.hpp"
#include "dsa/sparse_mla.hpp"

namespace dsa::detail {

// One cache and how the rows select from it.
struct MlaSelection {
  MlaCacheView cache;
  IndexMode mode = IndexMode::physical;
  const std::int32_t* block_table = nullptr;  // [B][max_blocks], logical mode
  std::int64_t max_blocks = 0;
  const std::int32_t* indices = nullptr;      // [T][topk]
  std::int32_t topk = 0;
  const std::int32_t* topk_length = nullptr;  // [B] or null
  std::int64_t rows_per_batch = 1;            // row r belongs to sequence r / rows_per_batch

  MlaTokenRef resolve(std::int64_t r, std::int32_t j) const {
    const std::int64_t b = r / rows_per_batch;
    if (j >= eligible_slots(topk, topk_length, b)) return {};
    const std::int32_t* bt_row = mode == IndexMode::logical ? block_table + b * max_blocks : nullptr;
    return resolve_slot(mode, indices[r * topk + j], bt_row, max_blocks, cache.geo.num_blocks,
                        cache.geo.page_tokens);
  }
};

struct MlaProblem {
  const std::uint16_t* q = nullptr;  // bf16 [T][H][D_qk]
  std::int64_t T = 0;
  std::int32_t H = 0;
  int D_qk = 576;
  int D_v = 512;
  MlaSelection sel[2];
  int num_sel = 1;
  const float* sink = nullptr;  // [H] or null
  float sm_scale = 0.0f;        // effective
  ReaderModel reader;
  MlaConventions conv;

  std::int64_t slots() const { return num_sel == 1 ? sel[0].topk : std::int64_t{sel[0].topk} + sel[1].topk; }

  // Whether a call is worth an OpenMP team: below ~16M multiply-adds (well under a millisecond)
  // a parallel region costs more than the work, and far more on a loaded machine where a barrier
  // may wait a scheduler slice. Results never depend on the thread count, so this is only speed.
  bool parallel() const { return T * H * slots() * (D_qk + D_v) >= (std::int64_t{1} << 24); }

  // Slot s of the concatenated axis of row r: the selection it belongs to and its token.
  struct Slot {
    const MlaSelection* sel;
    MlaTokenRef ref;
  };
  Slot slot(std::int64_t r, std::int64_t s) const {
    const int i = s < sel[0].topk ? 0 : 1;
    const auto j = static_cast<std::int32_t>(i == 0 ? s : s - sel[0].topk);
    return {&sel[i], sel[i].resolve(r, j)};
  }
};

// Of parameters that validate() has accepted (every entry point validates first, once).
MlaProblem make_problem(const SparseMlaDecodeParams& p);
MlaProblem make_problem(const SparseMlaPrefillParams& p);

}  // namespace dsa::detail
