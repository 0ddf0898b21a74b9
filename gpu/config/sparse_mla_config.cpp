// Config tables, JSON override and split heuristic for sparse MLA launches (SPEC §7).
#include "sparse_mla_config.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "dsa/error.hpp"

namespace dsa::gpu {

namespace {
constexpr const char* kEnv = "DSA_SPARSE_MLA_CONFIG";
bool is_pow2(std::int64_t x) { return x > 0 && (x & (x - 1)) == 0; }
}  // namespace

const char* to_string(ConfigTable t) { return t == ConfigTable::decode_table ? "decode" : "default"; }

SparseMlaConfig builtin_config(ConfigTable table) {
  if (table == ConfigTable::decode_table) return {.block_n = 64, .heads_per_cta = 64, .num_warps = 8, .num_stages = 2, .num_splits = 0};
  return {.block_n = 64, .heads_per_cta = 64, .num_warps = 8, .num_stages = 2, .num_splits = 0};
}

void validate(const SparseMlaConfig& c, const std::string& arg) {
  // The legal values are those the attention kernel is instantiated for (gpu/instances/).
  if (c.block_n != 32 && c.block_n != 64)
    throw InvalidArgument(arg, fmt::format("block_n must be 32 or 64, the key-tile widths the kernel is built for (got {})", c.block_n));
  if (c.heads_per_cta != 64)
    throw InvalidArgument(arg, fmt::format("heads_per_cta must be 64, the kernel's head group (got {})", c.heads_per_cta));
  if (c.num_warps != 8)
    throw InvalidArgument(arg, fmt::format("num_warps must be 8, the kernel's warp count (got {})", c.num_warps));
  if (c.num_stages != 2)
    throw InvalidArgument(arg, fmt::format("num_stages must be 2: one K/V tile loads while one is computed (got {})", c.num_stages));
  if (c.num_splits != 0 && (!is_pow2(c.num_splits) || c.num_splits > 64))
    throw InvalidArgument(arg, fmt::format("num_splits must be 0 (auto) or a power of two ≤ 64 (got {})", c.num_splits));
}

ResolvedConfig resolve_sparse_mla_config(std::int64_t num_query_rows, const char* override_json) {
  if (num_query_rows < 1)
    throw InvalidArgument("num_query_rows", fmt::format("must be ≥ 1 (got {})", num_query_rows));
  ResolvedConfig r;
  r.base = num_query_rows == 1 ? ConfigTable::decode_table : ConfigTable::default_table;
  r.config = builtin_config(r.base);
  r.overridden = false;
  if (override_json == nullptr || *override_json == '\0') return r;

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(override_json);
  } catch (const nlohmann::json::parse_error& e) {
    throw InvalidArgument(kEnv, fmt::format("is not valid JSON ({})", e.what()));
  }
  if (!j.is_object()) throw InvalidArgument(kEnv, fmt::format("must be a JSON object, got {}", j.type_name()));
  const std::pair<const char*, int SparseMlaConfig::*> keys[] = {
      {"block_n", &SparseMlaConfig::block_n},       {"heads_per_cta", &SparseMlaConfig::heads_per_cta},
      {"num_warps", &SparseMlaConfig::num_warps},   {"num_stages", &SparseMlaConfig::num_stages},
      {"num_splits", &SparseMlaConfig::num_splits},
  };
  for (const auto& [key, value] : j.items()) {
    int SparseMlaConfig::*field = nullptr;
    for (const auto& [name, member] : keys)
      if (key == name) field = member;
    if (!field)
      throw InvalidArgument(kEnv, fmt::format("unknown key '{}' (known: block_n, heads_per_cta, num_warps, "
                                              "num_stages, num_splits)", key));
    if (!value.is_number_integer())
      throw InvalidArgument(kEnv, fmt::format("key '{}' must be an integer, got {}", key, value.dump()));
    const auto v = value.get<std::int64_t>();
    if (v < 0 || v > 1 << 20) throw InvalidArgument(kEnv, fmt::format("key '{}' is out of range (got {})", key, v));
    r.config.*field = static_cast<int>(v);
    r.overridden = true;
  }
  validate(r.config, kEnv);
  return r;
}

ResolvedConfig resolve_sparse_mla_config_from_env(std::int64_t num_query_rows) {
  return resolve_sparse_mla_config(num_query_rows, std::getenv(kEnv));
}

int choose_num_splits(int sm_count, std::int64_t grid_ctas, std::int64_t slots_per_row, int block_n) {
  if (sm_count < 1) throw InvalidArgument("sm_count", fmt::format("must be ≥ 1 (got {})", sm_count));
  if (grid_ctas < 1) throw InvalidArgument("grid_ctas", fmt::format("must be ≥ 1 (got {})", grid_ctas));
  if (block_n < 1) throw InvalidArgument("block_n", fmt::format("must be ≥ 1 (got {})", block_n));
  if (2 * grid_ctas > sm_count || slots_per_row <= 0) return 1;
  int s = 1;
  while (2 * s <= kMaxHeuristicSplits && grid_ctas * 2 * s <= sm_count && slots_per_row / (2 * s) >= block_n) s *= 2;
  return s;
}

}  // namespace dsa::gpu
