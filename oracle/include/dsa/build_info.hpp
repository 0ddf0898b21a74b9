// What build and machine a report comes from (every report states it).
#pragma once
#include <string>

namespace dsa {
struct BuildInfo {
  std::string version;     // project version
  std::string git_commit;  // commit the build was configured from ("unknown" outside git)
  std::string compiler;    // compiler id and version
  std::string build_type;  // CMAKE_BUILD_TYPE
  std::string cpu_model;   // /proc/cpuinfo "model name", read at run time
  int hardware_threads;    // std::thread::hardware_concurrency()
};
BuildInfo build_info();
}  // namespace dsa
