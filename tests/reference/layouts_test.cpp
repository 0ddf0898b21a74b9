// SPEC §2 and §6.1 cache layouts: byte offsets checked against hand-derived known answers, and
// every page painted byte by byte to show that regions tile it without overlap.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dsa/layouts.hpp"

namespace {

using dsa::layout::Bf16;
using dsa::layout::IndexK;
using dsa::layout::Model1;
using dsa::layout::Model1Split;
using dsa::layout::V32;

// A page painted with the owner of each byte; painting a byte twice is an overlap.
struct Painter {
  std::vector<int> owner;
  int overlaps = 0;
  explicit Painter(std::int64_t bytes) : owner(static_cast<std::size_t>(bytes), 0) {}
  void paint(std::int64_t off, int len, int who) {
    for (int i = 0; i < len; ++i) {
      ASSERT_GE(off + i, 0);
      ASSERT_LT(off + i, static_cast<std::int64_t>(owner.size()));
      if (owner[static_cast<std::size_t>(off + i)] != 0) ++overlaps;
      owner[static_cast<std::size_t>(off + i)] = who;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// §2.1 V32.

TEST(Spec2_1_V32, TokenIs656BytesNopeScalesRope) {
  EXPECT_EQ(V32::token_bytes, 656);
  EXPECT_EQ(V32::dim_qk, 576);
  EXPECT_EQ(V32::dim_v, 512);
  EXPECT_EQ(V32::page_bytes(1), 656);
  EXPECT_EQ(V32::page_bytes(64), 41984);  // 64 · 656
  EXPECT_EQ(V32::page_bytes(53), 34768);  // 53 · 656
  // NoPE: byte d of the token.
  EXPECT_EQ(V32::dim_offset(0, 0), 0);
  EXPECT_EQ(V32::dim_offset(0, 511), 511);
  // RoPE dim 512 + r: bf16 at 528 + 2r.
  EXPECT_EQ(V32::dim_offset(0, 512), 528);
  EXPECT_EQ(V32::dim_offset(0, 513), 530);
  EXPECT_EQ(V32::dim_offset(0, 575), 654);
  // Scales: fp32 k at 512 + 4k.
  EXPECT_EQ(V32::scale_offset(0, 0), 512);
  EXPECT_EQ(V32::scale_offset(0, 3), 524);
  // Token t starts at 656 t.
  EXPECT_EQ(V32::dim_offset(1, 0), 656);
  EXPECT_EQ(V32::dim_offset(3, 130), 2098);       // 3·656 + 130
  EXPECT_EQ(V32::dim_offset(2, 575), 1966);       // 2·656 + 654
  EXPECT_EQ(V32::scale_offset(2, 3), 1836);       // 2·656 + 524
  EXPECT_EQ(V32::scale_offset(63, 1), 41844);     // 63·656 + 516
}

TEST(Spec2_1_V32, RegionsTileEachTokenWithoutOverlap) {
  const int P = 5;
  Painter p(V32::page_bytes(P));
  for (int t = 0; t < P; ++t) {
    for (int d = 0; d < 512; ++d) {
      const std::int64_t off = V32::dim_offset(t, d);
      EXPECT_GE(off - t * 656, 0);
      EXPECT_LT(off - t * 656, 512);
      p.paint(off, 1, 1);
    }
    for (int k = 0; k < 4; ++k) {
      const std::int64_t off = V32::scale_offset(t, k);
      EXPECT_GE(off - t * 656, 512);
      EXPECT_LE(off - t * 656 + 4, 528);
      p.paint(off, 4, 2);
    }
    for (int d = 512; d < 576; ++d) {
      const std::int64_t off = V32::dim_offset(t, d);
      EXPECT_GE(off - t * 656, 528);
      EXPECT_LE(off - t * 656 + 2, 656);
      p.paint(off, 2, 3);
    }
  }
  EXPECT_EQ(p.overlaps, 0);
  for (std::size_t i = 0; i < p.owner.size(); ++i) ASSERT_NE(p.owner[i], 0) << "byte " << i << " unused";
}

// ---------------------------------------------------------------------------------------------
// §2.2 MODEL1.

TEST(Spec2_2_Model1, PageIsValueRowsThenScaleRowsPaddedTo576) {
  EXPECT_EQ(Model1::token_bytes, 584);
  EXPECT_EQ(Model1::dim_qk, 512);
  EXPECT_EQ(Model1::dim_v, 512);
  // P·584 rounded up to a multiple of 576, worked by hand:
  EXPECT_EQ(Model1::page_bytes(1), 1152);    // 584 → 2·576
  EXPECT_EQ(Model1::page_bytes(2), 1728);    // 1168 → 3·576
  EXPECT_EQ(Model1::page_bytes(16), 9792);   // 9344 → 17·576
  EXPECT_EQ(Model1::page_bytes(53), 31104);  // 30952 → 54·576
  EXPECT_EQ(Model1::page_bytes(64), 37440);  // 37376 → 65·576 (SPEC's example)
  EXPECT_EQ(Model1::page_bytes(72), 42048);  // 42048 = 73·576 exactly: no padding
  EXPECT_EQ(Model1::page_bytes(73), 43200);  // 42632 → 75·576 (74·576 = 42624 is 8 B short)
}

TEST(Spec2_2_Model1, ValueRowIs448Fp8Then64Bf16AndScaleRowsFollowAllValueRows) {
  EXPECT_EQ(Model1::dim_offset(0, 0), 0);
  EXPECT_EQ(Model1::dim_offset(0, 447), 447);
  EXPECT_EQ(Model1::dim_offset(0, 448), 448);
  EXPECT_EQ(Model1::dim_offset(0, 449), 450);
  EXPECT_EQ(Model1::dim_offset(0, 511), 574);
  EXPECT_EQ(Model1::dim_offset(1, 0), 576);
  EXPECT_EQ(Model1::dim_offset(10, 500), 6312);  // 5760 + 448 + 2·52
  // P = 64: scale rows start after 64 value rows at 36 864.
  EXPECT_EQ(Model1::scale_offset(64, 0, 0), 36864);
  EXPECT_EQ(Model1::scale_offset(64, 0, 6), 36870);
  EXPECT_EQ(Model1::scale_offset(64, 1, 0), 36872);
  EXPECT_EQ(Model1::scale_offset(64, 63, 6), 37374);
  EXPECT_EQ(Model1::scale_offset(64, 63, 7), 37375);  // the pad byte; 37 376..37 439 is page padding
  // P = 1: the scale row right after the single value row.
  EXPECT_EQ(Model1::scale_offset(1, 0, 0), 576);
  EXPECT_EQ(Model1::scale_offset(53, 52, 3), 30947);  // 53·576 + 52·8 + 3
}

TEST(Spec2_2_Model1, RegionsTileThePageWithoutOverlap) {
  for (int P : {1, 2, 3, 16, 53, 64, 69, 72, 73}) {
    SCOPED_TRACE("P = " + std::to_string(P));
    Painter p(Model1::page_bytes(P));
    for (int t = 0; t < P; ++t) {
      for (int d = 0; d < 448; ++d) p.paint(Model1::dim_offset(t, d), 1, 1);
      for (int d = 448; d < 512; ++d) p.paint(Model1::dim_offset(t, d), 2, 2);
      for (int k = 0; k < 7; ++k) p.paint(Model1::scale_offset(P, t, k), 1, 3);
      p.paint(Model1::scale_offset(P, t, 7), 1, 4);
    }
    EXPECT_EQ(p.overlaps, 0);
    for (std::int64_t i = 0; i < Model1::page_bytes(P); ++i) {
      const int who = p.owner[static_cast<std::size_t>(i)];
      if (i < P * 576) ASSERT_TRUE(who == 1 || who == 2) << i;       // value rows
      else if (i < P * 584) ASSERT_TRUE(who == 3 || who == 4) << i;  // scale rows
      else ASSERT_EQ(who, 0) << i;                                    // padding
    }
    EXPECT_EQ(Model1::page_bytes(P) % 576, 0);
    EXPECT_GE(Model1::page_bytes(P), P * 584);
    EXPECT_LT(Model1::page_bytes(P) - P * 584, 576);
  }
}

TEST(Spec2_2_Model1Split, ValuesAndScalesAreTwoTensors) {
  EXPECT_EQ(Model1Split::page_bytes(64), 36864);
  EXPECT_EQ(Model1Split::scale_page_bytes(64), 512);
  EXPECT_EQ(Model1Split::page_bytes(53), 30528);
  EXPECT_EQ(Model1Split::scale_page_bytes(53), 424);
  EXPECT_EQ(Model1Split::dim_offset(10, 500), 6312);
  EXPECT_EQ(Model1Split::scale_offset(0, 0), 0);
  EXPECT_EQ(Model1Split::scale_offset(5, 6), 46);
  EXPECT_EQ(Model1Split::scale_offset(5, 7), 47);
  for (int P : {1, 16, 53}) {
    Painter values(Model1Split::page_bytes(P)), scales(Model1Split::scale_page_bytes(P));
    for (int t = 0; t < P; ++t) {
      for (int d = 0; d < 448; ++d) values.paint(Model1Split::dim_offset(t, d), 1, 1);
      for (int d = 448; d < 512; ++d) values.paint(Model1Split::dim_offset(t, d), 2, 2);
      for (int k = 0; k < 8; ++k) scales.paint(Model1Split::scale_offset(t, k), 1, 3);
    }
    EXPECT_EQ(values.overlaps + scales.overlaps, 0);
    for (int who : values.owner) ASSERT_NE(who, 0);
    for (int who : scales.owner) ASSERT_NE(who, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// §2.3 BF16.

TEST(Spec2_3_Bf16, DenseRowsOfDimQkBf16) {
  EXPECT_EQ(Bf16::page_bytes(64, 576), 73728);
  EXPECT_EQ(Bf16::page_bytes(3, 512), 3072);
  EXPECT_EQ(Bf16::dim_offset(0, 0, 576), 0);
  EXPECT_EQ(Bf16::dim_offset(0, 575, 576), 1150);
  EXPECT_EQ(Bf16::dim_offset(1, 0, 576), 1152);
  EXPECT_EQ(Bf16::dim_offset(2, 7, 512), 2062);  // (2·512 + 7)·2
  EXPECT_EQ(dsa::mla_dim_qk(dsa::MlaLayout::BF16, 512), 512);
  EXPECT_EQ(dsa::mla_dim_qk(dsa::MlaLayout::BF16), 576);
  EXPECT_EQ(dsa::mla_dim_qk(dsa::MlaLayout::V32), 576);
  EXPECT_EQ(dsa::mla_dim_qk(dsa::MlaLayout::MODEL1), 512);
  EXPECT_EQ(dsa::mla_dim_qk(dsa::MlaLayout::MODEL1_SPLIT), 512);
  EXPECT_EQ(dsa::mla_dim_v(), 512);
}

TEST(Spec2_Layouts, NamesAreTheSpecNames) {
  EXPECT_STREQ(dsa::to_string(dsa::MlaLayout::V32), "V32");
  EXPECT_STREQ(dsa::to_string(dsa::MlaLayout::MODEL1), "MODEL1");
  EXPECT_STREQ(dsa::to_string(dsa::MlaLayout::MODEL1_SPLIT), "MODEL1_SPLIT");
  EXPECT_STREQ(dsa::to_string(dsa::MlaLayout::BF16), "BF16");
  EXPECT_STREQ(dsa::to_string(dsa::IndexKLayout::standard), "standard");
  EXPECT_STREQ(dsa::to_string(dsa::IndexKLayout::preshuffle), "preshuffle");
}

// ---------------------------------------------------------------------------------------------
// §6.1 index K cache.

TEST(Spec6_1_IndexK, PageIsValuesThenFp32ScalesNotInterleaved) {
  EXPECT_EQ(IndexK::min_page_bytes(64, 128), 8448);  // 64·132
  EXPECT_EQ(IndexK::min_page_bytes(1, 1), 5);
  EXPECT_EQ(IndexK::scale_offset(64, 128, 0), 8192);
  EXPECT_EQ(IndexK::scale_offset(64, 128, 3), 8204);
  EXPECT_EQ(IndexK::scale_offset(64, 128, 63), 8444);
  EXPECT_EQ(IndexK::scale_offset(5, 7, 2), 43);  // 35 + 8
}

TEST(Spec6_1_IndexK, StandardPutsValueTdAtTTimesDPlusD) {
  EXPECT_EQ(IndexK::standard_offset(128, 0, 0), 0);
  EXPECT_EQ(IndexK::standard_offset(128, 3, 5), 389);
  EXPECT_EQ(IndexK::standard_offset(128, 63, 127), 8191);
  EXPECT_EQ(IndexK::value_offset(dsa::IndexKLayout::standard, 128, 3, 5), 389);
}

TEST(Spec6_1_IndexK, PreshuffleKnownAnswers) {
  // (t/16)·16·D + (d/16)·256 + (t%16)·16 + d%16 worked by hand for D = 128.
  EXPECT_EQ(IndexK::preshuffle_offset(128, 0, 0), 0);
  EXPECT_EQ(IndexK::preshuffle_offset(128, 0, 15), 15);
  EXPECT_EQ(IndexK::preshuffle_offset(128, 1, 0), 16);    // next tile row
  EXPECT_EQ(IndexK::preshuffle_offset(128, 0, 16), 256);  // next tile
  EXPECT_EQ(IndexK::preshuffle_offset(128, 15, 127), 2047);
  EXPECT_EQ(IndexK::preshuffle_offset(128, 16, 0), 2048);  // next 16-token group
  EXPECT_EQ(IndexK::preshuffle_offset(128, 17, 35), 2579);  // 2048 + 512 + 16 + 3
  EXPECT_EQ(IndexK::preshuffle_offset(128, 63, 127), 8191);
  EXPECT_EQ(IndexK::value_offset(dsa::IndexKLayout::preshuffle, 128, 17, 35), 2579);
}

// The page built tile by tile: for each 16-token group g, tiles j = 0, 1, … along d follow each
// other; each tile is a 16×16 byte matrix stored row-major with rows t%16 and columns d%16.
std::vector<std::int64_t> preshuffle_by_tiles(int P, int D) {
  std::vector<std::int64_t> at(static_cast<std::size_t>(P) * D, -1);  // at[t·D + d] = byte
  std::int64_t byte = 0;
  for (int g = 0; g < P / 16; ++g)
    for (int j = 0; j < D / 16; ++j)
      for (int row = 0; row < 16; ++row)
        for (int col = 0; col < 16; ++col) at[static_cast<std::size_t>((16 * g + row) * D + 16 * j + col)] = byte++;
  return at;
}

TEST(Spec6_1_IndexK, PreshuffleIsTheTileTranspositionAndABijection) {
  for (int P : {16, 32, 64, 128}) {
    for (int D : {16, 32, 64, 128, 144}) {
      SCOPED_TRACE("P = " + std::to_string(P) + ", D = " + std::to_string(D));
      const auto expected = preshuffle_by_tiles(P, D);
      std::vector<int> hits(static_cast<std::size_t>(P) * D, 0);
      for (int t = 0; t < P; ++t) {
        for (int d = 0; d < D; ++d) {
          const std::int64_t off = IndexK::preshuffle_offset(D, t, d);
          ASSERT_EQ(off, expected[static_cast<std::size_t>(t * D + d)]) << "t " << t << " d " << d;
          ASSERT_GE(off, 0);
          ASSERT_LT(off, static_cast<std::int64_t>(P) * D);
          ++hits[static_cast<std::size_t>(off)];
        }
      }
      for (int h : hits) ASSERT_EQ(h, 1);
    }
  }
}

TEST(Spec6_1_IndexK, ValuesAndScalesNeverOverlapInEitherLayout) {
  for (auto l : {dsa::IndexKLayout::standard, dsa::IndexKLayout::preshuffle}) {
    for (int P : {16, 64}) {
      for (int D : {16, 128}) {
        Painter p(IndexK::min_page_bytes(P, D));
        for (int t = 0; t < P; ++t) {
          for (int d = 0; d < D; ++d) p.paint(IndexK::value_offset(l, D, t, d), 1, 1);
          p.paint(IndexK::scale_offset(P, D, t), 4, 2);
        }
        EXPECT_EQ(p.overlaps, 0);
        for (std::size_t i = 0; i < p.owner.size(); ++i) ASSERT_EQ(p.owner[i], i < std::size_t(P * D) ? 1 : 2) << i;
      }
    }
  }
  // Standard with any P and D (no multiple-of-16 requirement).
  Painter p(IndexK::min_page_bytes(7, 13));
  for (int t = 0; t < 7; ++t) {
    for (int d = 0; d < 13; ++d) p.paint(IndexK::standard_offset(13, t, d), 1, 1);
    p.paint(IndexK::scale_offset(7, 13, t), 4, 2);
  }
  EXPECT_EQ(p.overlaps, 0);
  for (int who : p.owner) ASSERT_NE(who, 0);
}

TEST(Spec2_Layouts, RoundUp) {
  EXPECT_EQ(dsa::layout::round_up(0, 576), 0);
  EXPECT_EQ(dsa::layout::round_up(1, 576), 576);
  EXPECT_EQ(dsa::layout::round_up(576, 576), 576);
  EXPECT_EQ(dsa::layout::round_up(577, 576), 1152);
}

}  // namespace
