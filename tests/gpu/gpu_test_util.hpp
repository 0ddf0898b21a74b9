// Shared helpers of the GPU suites: the skip-without-device fixture, exact-sized device buffers
// and a deterministic random source. Compiled by the backend's compiler (CUDA or HIP).
#pragma once

#include "dsa/gpu/port.hpp"  // first: the vendor runtime

#include "dsa/error.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace dsa::gpu::testing {

// Why no device can be used ("" when one can): asked once per process.
inline const std::string& device_unavailable_reason() {
  static const std::string reason = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
      return std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
    if (n == 0) return std::string("cudaGetDeviceCount reports 0 devices");
    const cudaError_t f = cudaFree(nullptr);  // creates the context
    if (f != cudaSuccess) return std::string("context creation: ") + cudaGetErrorName(f) + ": " + cudaGetErrorString(f);
    return std::string();
  }();
  return reason;
}

// Tests that launch kernels derive from this: without a device they report SKIPPED, visibly.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_unavailable_reason().empty())
      GTEST_SKIP() << "no " << kBackendName << " device: " << device_unavailable_reason();
  }
};

// A device allocation of exactly n elements (none for n == 0), so that compute-sanitizer's
// memcheck sees a read one element past the end.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) DSA_GPU_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    if (n_ > 0) DSA_GPU_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  void fill_bytes(std::uint8_t byte) {
    if (n_ > 0) DSA_GPU_CHECK(cudaMemset(p_, byte, n_ * sizeof(T)));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) DSA_GPU_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// A pointer that is never dereferenced: argument-validation tests pass it where a device
// pointer is required, so they run (and must throw) without a device.
template <class T>
T* fake_device_ptr() {
  return reinterpret_cast<T*>(std::uintptr_t{0x10000});
}

using Rng = std::mt19937_64;

inline std::int64_t uniform(Rng& rng, std::int64_t lo, std::int64_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

inline void fill_random_bytes(std::vector<std::uint8_t>& bytes, Rng& rng) {
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
}

// Index of the first differing byte of two equally sized arrays, or −1.
template <class T>
std::int64_t first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  const auto* pa = reinterpret_cast<const std::uint8_t*>(a.data());
  const auto* pb = reinterpret_cast<const std::uint8_t*>(b.data());
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size() * sizeof(T); ++i)
    if (pa[i] != pb[i]) return static_cast<std::int64_t>(i / sizeof(T));
  return -1;
}

// The argument named by the dsa::InvalidArgument that f throws, or "(accepted)".
inline std::string rejected_argument(const std::function<void()>& f) {
  try {
    f();
  } catch (const dsa::InvalidArgument& e) {
    return e.argument();
  }
  return "(accepted)";
}

}  // namespace dsa::gpu::testing
