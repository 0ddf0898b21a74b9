// Sparse MLA launch configuration (SPEC §7): the `default` and `decode` tables as data, the
// DSA_SPARSE_MLA_CONFIG JSON override, and the split-count heuristic. Host-only C++; kernels
// receive a resolved config and never choose one themselves.
#pragma once

#include <cstdint>
#include <string>

namespace dsa::gpu {

enum class ConfigTable : std::uint8_t { default_table, decode_table };
const char* to_string(ConfigTable t);

struct SparseMlaConfig {
  // Every field is a real parameter of the attention kernel (gpu/sparse_mla_attention_kernel.cuh);
  // validate() admits only the values it is instantiated for.
  int block_n = 64;        // keys per tile of the online-softmax loop: 32 or 64 (template parameter)
  int heads_per_cta = 64;  // query heads one CTA processes: 64
  int num_warps = 8;       // warps per CTA: 8 (4 head quarters × 2 halves of keys / value dims)
  int num_stages = 2;      // K/V tiles in flight: 2 (one loads while one is computed)
  // Split-KV: 0 = chosen by choose_num_splits(), 1 = single pass, N = exactly N splits (power of
  // two, ≤ 64).
  int num_splits = 0;

  friend bool operator==(const SparseMlaConfig&, const SparseMlaConfig&) = default;
};

// The built-in tables. Why these values: `decode` (one query row) has two CTAs of 64 heads before
// splitting, so it takes narrow key tiles, which let choose_num_splits cut the row into twice as
// many chunks; `default` (many rows) takes wide tiles (fewer barriers per key). Both leave the
// split count to the heuristic, which returns 1 once the rows fill the device.
SparseMlaConfig builtin_config(ConfigTable table);

struct ResolvedConfig {
  SparseMlaConfig config;
  ConfigTable base;     // the table the config started from
  bool overridden;      // DSA_SPARSE_MLA_CONFIG changed at least one key
};

// Resolution, highest priority first: the JSON object in `override_json` (the value of
// DSA_SPARSE_MLA_CONFIG; nullptr or empty = no override) overrides keys of the base; the base is
// `decode` when T == 1 (T = B·S_q query rows) and `default` otherwise. Invalid JSON, a non-object,
// an unknown key or an illegal value throws dsa::InvalidArgument naming DSA_SPARSE_MLA_CONFIG.
ResolvedConfig resolve_sparse_mla_config(std::int64_t num_query_rows, const char* override_json);

// The same, reading the environment variable.
ResolvedConfig resolve_sparse_mla_config_from_env(std::int64_t num_query_rows);

// Throws dsa::InvalidArgument(argument, rule) when a field is out of its documented range.
void validate(const SparseMlaConfig& c, const std::string& argument);

// Split count for a launch of `grid_ctas` CTAs on `sm_count` SMs over rows of `slots_per_row`
// selected keys: 1 when the grid already fills the device; otherwise the smallest power of two
// s ∈ {2, 4, …, 64} with grid_ctas·s ≥ sm_count, lowered until every split keeps at least two
// key tiles (slots_per_row / s ≥ 2·block_n), because a split shorter than that costs more in the
// combine than it gains in occupancy.
int choose_num_splits(int sm_count, std::int64_t grid_ctas, std::int64_t slots_per_row, int block_n);

// The split candidates warm-up must prepare: every power of two up to 64 that choose_num_splits
// can return, plus 1.
inline constexpr int kSplitCandidates[] = {1, 2, 4, 8, 16, 32, 64};

}  // namespace dsa::gpu
