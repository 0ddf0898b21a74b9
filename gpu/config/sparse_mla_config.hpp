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

// The built-in tables. Why these values (decode benchmark, H200, H = 128, V32 and MODEL1): both
// take 64-key tiles and leave the split count to choose_num_splits. At T = 1 the heuristic's
// splits are what matter; 32-key tiles win only where they buy twice the splits (topk 512:
// 19.1 vs 20.7 µs, 1024: 20.7 vs 21.2 µs) and lose where the split count is the same (topk 2048,
// 32 splits either way: 24.8 vs 23.4 µs); topk = 2048 is the DeepSeek setting, and the decode
// table must never be slower than the default at T = 1, so `decode` keeps block_n 64 too. From
// T = 8 on 64-key tiles are 5-17 % faster (fewer barriers per key). The tables coincide today;
// they stay separate entries so that a kernel with other trade-offs can tune them apart.
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

// Split count for a launch of `grid_ctas` CTAs (one per SM: the attention kernel takes all of an
// SM's shared memory) on `sm_count` SMs over rows of `slots_per_row` selected keys: 1 when the grid
// already fills at least half of the device; otherwise the largest power of two s ≤ 32 that keeps
// the split grid within one wave (grid_ctas·s ≤ sm_count) and every split at least one key tile
// (slots_per_row / s ≥ block_n). Why, from the decode benchmark on an H200 (132 SMs, H = 128):
// a second wave costs more than the splits gain (T = 8, topk = 1024: 16 splits 45 µs, 8 splits
// 31 µs; T = 64: 2 splits 260 µs, unsplit 244 µs), and beyond 32 splits the combine's reads cost
// more than the shorter chunks save (T = 1, topk = 2048: 64 splits 27.5 µs, 32 splits 25.4 µs).
inline constexpr int kMaxHeuristicSplits = 32;
int choose_num_splits(int sm_count, std::int64_t grid_ctas, std::int64_t slots_per_row, int block_n);

// The split counts a plan may use: every power of two up to 64 (the heuristic's up to 32, an
// explicit config up to 64), plus 1.
inline constexpr int kSplitCandidates[] = {1, 2, 4, 8, 16, 32, 64};

}  // namespace dsa::gpu
