// main() of the GPU suites: selects the GPU that CTest's resource allocation names
// (CTEST_RESOURCE_GROUP_0_GPUS = "id:<n>,slots:1" under `ctest --resource-spec-file`), then runs
// GoogleTest. Without that variable it touches no GPU, so test discovery needs none.
#include "dsa/gpu/port.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (const char* alloc = std::getenv("CTEST_RESOURCE_GROUP_0_GPUS")) {
    if (const char* id = std::strstr(alloc, "id:")) {
      const int device = std::atoi(id + 3);
      if (cudaSetDevice(device) != cudaSuccess)
        std::fprintf(stderr, "gpu_test_main: cannot select device %d from CTEST_RESOURCE_GROUP_0_GPUS=%s\n", device,
                     alloc);
    }
  }
  return RUN_ALL_TESTS();
}
