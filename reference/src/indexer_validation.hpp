// Size checks shared by the indexer entry points (paged_mqa_logits, mqa_logits, topk): element
// counts are products of caller-given extents, computed so that hostile extents cannot overflow
// int64 (private to reference/src).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <optional>

#include "dsa/error.hpp"

namespace dsa::detail {

// a·b·… (factors ≥ 0), or nothing when the product exceeds int64: no buffer can hold that many.
inline std::optional<std::int64_t> checked_product(std::initializer_list<std::int64_t> factors) {
  std::int64_t p = 1;
  for (std::int64_t f : factors)
    if (f < 0 || __builtin_mul_overflow(p, f, &p)) return std::nullopt;
  return p;
}

// `have` ≥ the product of `factors`, else InvalidArgument(name, "... needs <what> = ...").
inline void require_elements(std::size_t have, std::initializer_list<std::int64_t> factors, const char* name,
                             const char* what) {
  const auto need = checked_product(factors);
  if (!need || static_cast<std::int64_t>(have) < *need)
    throw InvalidArgument(name, need ? fmt::format("holds {} elements, needs {} = {}", have, what, *need)
                                     : fmt::format("holds {} elements, needs {}, which exceeds int64", have, what));
}

// An output [rows][row_stride] of which each row uses [0, width): `have` ≥ (rows − 1)·row_stride + width.
inline void require_rows(std::size_t have, std::int64_t rows, std::int64_t row_stride, std::int64_t width,
                         const char* name, const char* what) {
  if (rows <= 0) return;
  const auto body = checked_product({rows - 1, row_stride});
  std::int64_t need = 0;
  if (!body || __builtin_add_overflow(*body, width, &need))
    throw InvalidArgument(name, fmt::format("holds {} elements, needs {}, which exceeds int64", have, what));
  if (static_cast<std::int64_t>(have) < need)
    throw InvalidArgument(name, fmt::format("holds {} elements, needs {} = {}", have, what, need));
}

}  // namespace dsa::detail
