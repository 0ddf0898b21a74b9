// Write contracts of indexer logits (SPEC §6.2, §9): which positions of [0, max_ctx) an outside
// kernel promises to define. Every implementation of this project writes them all (`all`); the
// contract is a parameter of the checking side, so a kernel that leaves masked positions
// untouched is judged only on what it promises.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dsa/hd.hpp"
#include "dsa/visible_range.hpp"

namespace dsa {

enum class WriteContract : std::uint8_t {
  all,        // every position of [0, max_ctx): the logit where visible, −inf elsewhere (this project)
  visible,    // only visible positions are defined; the rest must not be read (DeepGEMM)
  ceil_page,  // positions below the row's visible end rounded up to the page are defined (aiter)
};

inline const char* to_string(WriteContract c) {
  switch (c) {
    case WriteContract::all: return "all";
    case WriteContract::visible: return "visible";
    case WriteContract::ceil_page: return "ceil_page";
  }
  return "?";
}

// Whether a checker may read position t of a row with visible range `v` in an output of width
// max_ctx. A defined position that is not visible must hold −inf. Under ceil_page a row with
// nothing visible defines nothing; `page_tokens` (≥ 1) is used by ceil_page only.
DSA_HD constexpr bool write_contract_defines(WriteContract c, VisibleRange v, std::int64_t t, std::int64_t max_ctx,
                                             std::int64_t page_tokens) {
  if (t < 0 || t >= max_ctx) return false;
  switch (c) {
    case WriteContract::all: return true;
    case WriteContract::visible: return v.contains(t);
    case WriteContract::ceil_page: return t < (v.end + page_tokens - 1) / page_tokens * page_tokens;
  }
  return false;
}

// [rows][max_ctx], 1 where the contract leaves the position undefined: the `skip_mask` form the
// oracle's compare() takes (oracle/include/dsa/compare.hpp).
inline std::vector<std::uint8_t> write_contract_skip_mask(WriteContract c, std::span<const VisibleRange> ranges,
                                                          std::int64_t max_ctx, std::int64_t page_tokens) {
  std::vector<std::uint8_t> skip(ranges.size() * static_cast<std::size_t>(max_ctx));
  for (std::size_t r = 0; r < ranges.size(); ++r)
    for (std::int64_t t = 0; t < max_ctx; ++t)
      skip[r * static_cast<std::size_t>(max_ctx) + static_cast<std::size_t>(t)] =
          write_contract_defines(c, ranges[r], t, max_ctx, page_tokens) ? 0 : 1;
  return skip;
}

}  // namespace dsa
