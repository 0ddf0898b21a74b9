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
  int block_n = 64;        // keys per tile of the online-softmax loop; power of two in [16, 256]
  int heads_per_cta = 64;  // query heads one CTA processes; power of two in [16, 128]
  int num_warps = 4;       // warps per CTA; one of 1, 2, 4, 8, 16
  int num_stages = 2;      // K/V tiles in flight; 1..4
  // Split-KV: 0 = chosen by choose_num_splits(), 1 = single pass, N = exactly N splits (power of
  // two, ≤ 64).
  int num_splits = 0;

  friend bool operator==(const SparseMlaConfig&, const SparseMlaConfig&) = default;
};

// The built-in tables. Why these values: `decode` (one query row) has too few CTAs to fill the
// device from heads alone, so it takes narrow key tiles and leaves the split count to the
// heuristic; `default` (many rows) fills the device from rows and heads and runs a single pass.
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
