// Config resolution of SPEC §7: tables, T rule, DSA_SPARSE_MLA_CONFIG override, split heuristic.
#include "sparse_mla_config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "dsa/error.hpp"

using namespace dsa::gpu;

namespace {
// Expects resolve() to throw InvalidArgument naming the variable, with `fragment` in the rule.
void expect_rejected(const char* json, const char* fragment) {
  try {
    resolve_sparse_mla_config(4, json);
    ADD_FAILURE() << "accepted " << json;
  } catch (const dsa::InvalidArgument& e) {
    EXPECT_EQ(e.argument(), "DSA_SPARSE_MLA_CONFIG") << json;
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(SparseMlaConfig, OneQueryRowSelectsDecodeTable) {
  const auto r = resolve_sparse_mla_config(1, nullptr);
  EXPECT_EQ(r.base, ConfigTable::decode_table);
  EXPECT_EQ(r.config, builtin_config(ConfigTable::decode_table));
  EXPECT_FALSE(r.overridden);
}

TEST(SparseMlaConfig, SeveralQueryRowsSelectDefaultTable) {
  for (std::int64_t t : {2, 8, 64, 1 << 20}) {
    const auto r = resolve_sparse_mla_config(t, "");
    EXPECT_EQ(r.base, ConfigTable::default_table) << t;
    EXPECT_EQ(r.config, builtin_config(ConfigTable::default_table));
  }
}

TEST(SparseMlaConfig, TablesAreLegalAndSplitByHeuristic) {
  // Both take 64-key tiles (measured; see builtin_config) and the heuristic's split count.
  for (auto t : {ConfigTable::decode_table, ConfigTable::default_table}) {
    EXPECT_NO_THROW(validate(builtin_config(t), "table"));
    EXPECT_EQ(builtin_config(t).block_n, 64);
    EXPECT_EQ(builtin_config(t).num_splits, 0);
  }
}

TEST(SparseMlaConfig, PartialOverrideKeepsOtherKeysOfTheBase) {
  const auto r = resolve_sparse_mla_config(1, R"({"block_n": 32})");
  EXPECT_TRUE(r.overridden);
  EXPECT_EQ(r.base, ConfigTable::decode_table);
  SparseMlaConfig want = builtin_config(ConfigTable::decode_table);
  want.block_n = 32;
  EXPECT_EQ(r.config, want);
  const auto d = resolve_sparse_mla_config(9, R"({"num_splits": 4, "block_n": 32})");
  SparseMlaConfig want_d = builtin_config(ConfigTable::default_table);
  want_d.num_splits = 4;
  want_d.block_n = 32;
  EXPECT_EQ(d.config, want_d);
}

TEST(SparseMlaConfig, EmptyObjectIsNoChange) {
  const auto r = resolve_sparse_mla_config(3, "{}");
  EXPECT_FALSE(r.overridden);
  EXPECT_EQ(r.config, builtin_config(ConfigTable::default_table));
}

TEST(SparseMlaConfig, InvalidJsonIsRejected) { expect_rejected(R"({"block_n": )", "not valid JSON"); }
TEST(SparseMlaConfig, NonObjectIsRejected) {
  expect_rejected("[1, 2]", "must be a JSON object");
  expect_rejected("64", "must be a JSON object");
}
TEST(SparseMlaConfig, UnknownKeyIsRejected) { expect_rejected(R"({"blockn": 64})", "unknown key 'blockn'"); }
TEST(SparseMlaConfig, IllegalValuesAreRejected) {
  // Only the values the kernel is instantiated for are legal.
  expect_rejected(R"({"block_n": 48})", "block_n must be 32 or 64");
  expect_rejected(R"({"block_n": 128})", "block_n must be 32 or 64");
  expect_rejected(R"({"heads_per_cta": 32})", "heads_per_cta must be 64");
  expect_rejected(R"({"num_warps": 4})", "num_warps must be 8");
  expect_rejected(R"({"num_stages": 0})", "num_stages");
  expect_rejected(R"({"num_stages": 3})", "num_stages");
  expect_rejected(R"({"num_splits": 6})", "num_splits");
  expect_rejected(R"({"num_splits": 128})", "num_splits");
  expect_rejected(R"({"block_n": "64"})", "must be an integer");
  expect_rejected(R"({"block_n": 64.5})", "must be an integer");
  expect_rejected(R"({"block_n": -64})", "out of range");
}

TEST(SparseMlaConfig, EnvironmentVariableIsRead) {
  ASSERT_EQ(setenv("DSA_SPARSE_MLA_CONFIG", R"({"num_splits": 16})", 1), 0);
  const auto r = resolve_sparse_mla_config_from_env(1);
  unsetenv("DSA_SPARSE_MLA_CONFIG");
  EXPECT_TRUE(r.overridden);
  EXPECT_EQ(r.config.num_splits, 16);
  EXPECT_FALSE(resolve_sparse_mla_config_from_env(1).overridden);
}

TEST(SplitHeuristic, NoSplitWhenTheGridFillsHalfTheDevice) {
  EXPECT_EQ(choose_num_splits(132, 132, 2048, 64), 1);
  EXPECT_EQ(choose_num_splits(132, 1000, 2048, 64), 1);
  EXPECT_EQ(choose_num_splits(132, 128, 2048, 64), 1);  // T = 64, H = 128: 2 splits measured slower
  EXPECT_EQ(choose_num_splits(132, 67, 2048, 64), 1);   // 2·67 > 132
  EXPECT_EQ(choose_num_splits(132, 66, 2048, 64), 2);
}

TEST(SplitHeuristic, LargestPowerOfTwoWithinOneWave) {
  // 2 CTAs (T = 1, H = 128): 2·64 = 128 ≤ 132, but at most 32 splits.
  EXPECT_EQ(choose_num_splits(132, 2, 2048, 32), 32);
  EXPECT_EQ(choose_num_splits(132, 2, 1024, 32), 32);
  // 16 CTAs (T = 8): 16·8 = 128 ≤ 132 < 16·16.
  EXPECT_EQ(choose_num_splits(132, 16, 2048, 64), 8);
  EXPECT_EQ(choose_num_splits(132, 16, 512, 64), 8);
  // 40 CTAs: 40·2 = 80 ≤ 132 < 40·4.
  EXPECT_EQ(choose_num_splits(132, 40, 2048, 64), 2);
  // 64 CTAs (T = 32): 2.
  EXPECT_EQ(choose_num_splits(132, 64, 2048, 64), 2);
  // Never a second wave.
  for (std::int64_t grid = 1; grid <= 66; ++grid) EXPECT_LE(grid * choose_num_splits(132, grid, 1 << 20, 16), 132) << grid;
}

TEST(SplitHeuristic, EverySplitKeepsOneKeyTile) {
  // 2 CTAs want 32 splits, but 512 slots / 32 = 16 < 32: lowered to 512 / 32 = 16 splits.
  EXPECT_EQ(choose_num_splits(132, 2, 512, 32), 16);
  EXPECT_EQ(choose_num_splits(132, 2, 512, 64), 8);
  // Too few slots for even two splits.
  EXPECT_EQ(choose_num_splits(132, 2, 100, 64), 1);
  EXPECT_EQ(choose_num_splits(132, 2, 128, 64), 2);
  for (int s : {1, 2, 4, 8, 16, 32, 64}) EXPECT_NE(std::find(std::begin(kSplitCandidates), std::end(kSplitCandidates), s), std::end(kSplitCandidates));
}

TEST(SplitHeuristic, BadArgumentsAreNamed) {
  EXPECT_THROW(choose_num_splits(0, 1, 64, 64), dsa::InvalidArgument);
  try {
    choose_num_splits(132, 0, 64, 64);
    FAIL();
  } catch (const dsa::InvalidArgument& e) {
    EXPECT_EQ(e.argument(), "grid_ctas");
  }
}
