// Build and host description for reports.
#include "dsa/build_info.hpp"

#include <fstream>
#include <thread>

#ifndef DSA_GIT_COMMIT
#define DSA_GIT_COMMIT "unknown"
#endif
#ifndef DSA_VERSION
#define DSA_VERSION "0.0.0"
#endif
#ifndef DSA_BUILD_TYPE
#define DSA_BUILD_TYPE "unknown"
#endif

namespace dsa {

namespace {
std::string read_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown CPU";
}
}  // namespace

BuildInfo build_info() {
  BuildInfo b;
  b.version = DSA_VERSION;
  b.git_commit = DSA_GIT_COMMIT;
#if defined(__clang__)
  b.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  b.compiler = "gcc " __VERSION__;
#else
  b.compiler = "unknown";
#endif
  b.build_type = DSA_BUILD_TYPE;
  b.cpu_model = read_cpu_model();
  b.hardware_threads = static_cast<int>(std::thread::hardware_concurrency());
  return b;
}

}  // namespace dsa
