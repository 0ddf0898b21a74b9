#include <gtest/gtest.h>
#include "dsa/formats.hpp"
TEST(Smoke, Bf16) { EXPECT_EQ(dsa::f32_to_bf16(1.0f), 0x3F80); }
