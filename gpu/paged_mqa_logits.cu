// paged_mqa_logits on the GPU: the device-side checks that run before every logits launch, the
// streaming path's host side (tensor-map encoding, eligibility, stage count), the path report and
// the warm-up of every instance.
#include "paged_mqa_logits_kernel.cuh"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#if !defined(DSA_GPU_BACKEND_HIP)
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled
#endif

namespace dsa::gpu {
namespace detail {

// The items [first, B·(max_blocks + 1)) by `stride`: the checks' body in every form below.
__device__ __forceinline__ std::int32_t paged_logits_check_items(const PagedMqaLogitsParams& a, std::int64_t first,
                                                                 std::int64_t stride) {
  const std::int64_t n = a.batch * (a.max_blocks + 1);
  std::int32_t bits = 0;
#pragma unroll 4
  for (std::int64_t i = first; i < n; i += stride) bits |= paged_logits_check_item(a, i);
  return bits;
}

// Any number of CTAs; *status zeroed before (a memset).
// Lets the streaming logits kernel start at once: it reads, and waits for this grid before it writes.
__global__ void __launch_bounds__(kPagedCheckThreads) paged_logits_check_grid_kernel(const PagedMqaLogitsParams a) {
  release_dependents();
  const std::int32_t bits = paged_logits_check_items(a, static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                                                     static_cast<std::int64_t>(gridDim.x) * blockDim.x);
  if (bits != 0) atomicOr(a.status, bits);
}

void launch_paged_logits_grid_checks(const PagedMqaLogitsParams& a, Stream stream) {
  DSA_GPU_CHECK(cudaMemsetAsync(a.status, 0, sizeof(std::int32_t), stream));
  if (a.batch == 0) return;
  const std::int64_t n = a.batch * (a.max_blocks + 1);
  const std::int64_t blocks = std::min<std::int64_t>((n + kPagedCheckThreads - 1) / kPagedCheckThreads, 1024);
  paged_logits_check_grid_kernel<<<static_cast<unsigned>(blocks), kPagedCheckThreads, 0, stream>>>(a);
  DSA_GPU_CHECK_LAUNCH();
}

#if !defined(DSA_GPU_BACKEND_HIP)
// CUDA: one cluster of 8 CTAs zeroes *status and checks, so a call is two launches (no memset
// node): CTA 0 stores the 0, the cluster barrier (release/acquire) orders it before every CTA's
// atomicOr. The checks' loads are independent across items, so 8192 threads cover a table of
// kPagedCheckClusterItems in a few µs; the streaming logits kernel overlaps them (PDL).
// The cluster is itself launched programmatically: it may be scheduled while the kernel ahead of
// it finishes, and waits for that kernel (griddepcontrol.wait) before it reads an input, writes
// *status or lets the logits kernel start — the logits kernel reads the table before its own wait,
// so it must not start before the kernel ahead has finished. Measured on an H200, calls back to
// back, on the preshuffle layout (which the tensor map's setting below does not touch): B = 64,
// ctx = 8192 22.5 → 22.1 µs a call, B = 1 4.5 → 4.0 µs; large shapes unchanged.
inline constexpr int kPagedCheckClusterCtas = 8;
inline constexpr int kPagedCheckClusterThreads = 1024;
// Past this many items a single cluster would make the logits kernel wait (B = 128 at 131072
// positions: 262 k items, +39 µs measured on an H200): then the memset and a grid of any size.
inline constexpr std::int64_t kPagedCheckClusterItems = std::int64_t{8} * kPagedCheckClusterCtas * kPagedCheckClusterThreads;

__global__ void __cluster_dims__(kPagedCheckClusterCtas, 1, 1) __launch_bounds__(kPagedCheckClusterThreads)
    paged_logits_check_kernel(const PagedMqaLogitsParams a) {
  wait_for_kernel_ahead();
  release_dependents();
  if (blockIdx.x == 0 && threadIdx.x == 0) *a.status = 0;
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
  const std::int32_t bits = paged_logits_check_items(a, static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                                                     static_cast<std::int64_t>(gridDim.x) * blockDim.x);
  if (bits != 0) atomicOr(a.status, bits);
}

void launch_paged_logits_checks(const PagedMqaLogitsParams& a, Stream stream) {
  if (a.batch * (a.max_blocks + 1) > kPagedCheckClusterItems) return launch_paged_logits_grid_checks(a, stream);
  launch_programmatic(paged_logits_check_kernel, dim3(kPagedCheckClusterCtas), dim3(kPagedCheckClusterThreads), 0,
                      stream, a);
}
#else
void launch_paged_logits_checks(const PagedMqaLogitsParams& a, Stream stream) { launch_paged_logits_grid_checks(a, stream); }
#endif

#if !defined(DSA_GPU_BACKEND_HIP)
void encode_index_k_tensor_map(CUtensorMap* map, const std::uint8_t* cache, std::int64_t page_tokens,
                               std::int64_t block_stride_bytes, std::int64_t num_blocks) {
  // The driver's encoder through the runtime, so the library links no libcuda.
  static const auto encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    DSA_GPU_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || fn == nullptr)
      throw std::runtime_error("paged_mqa_logits: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(kLogitsDim), static_cast<cuuint64_t>(page_tokens),
                              static_cast<cuuint64_t>(num_blocks)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(kLogitsDim), static_cast<cuuint64_t>(block_stride_bytes)};
  const cuuint32_t box[3] = {static_cast<cuuint32_t>(kLogitsDim), static_cast<cuuint32_t>(kTmaTileTokens), 1};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  // No L2 promotion: each box row is one 128-byte line of codes, read once. Measured on an H200
  // (B = 64, ctx = 8192, standard): 256-byte promotion 22.9–23.0 µs a call, none 22.7–22.8 µs, in
  // the same runs; the cause was not isolated.
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 3, const_cast<std::uint8_t*>(cache), dims, strides, box,
                            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error("paged_mqa_logits: cuTensorMapEncodeTiled failed with CUresult " + std::to_string(r));
}

int paged_logits_tma_stages() {
  static const int stages = [] {
    const char* e = std::getenv("DSA_INDEXER_TMA_STAGES");
    const int n = e != nullptr ? std::atoi(e) : kTmaStages;
    return n >= 2 && n <= kTmaMaxStages ? n : kTmaStages;
  }();
  return stages;
}

// DSA_INDEXER_TMA=0 turns the streaming path off (read once).
bool paged_logits_tma_disabled() {
  static const bool disabled = [] {
    const char* e = std::getenv("DSA_INDEXER_TMA");
    return e != nullptr && std::string(e) == "0";
  }();
  return disabled;
}

bool paged_logits_tma_eligible(const PagedMqaLogitsParams& p) {
  if (paged_logits_tma_disabled() || choose_logits_path(p.q_fp8, p.cache.fp8) != LogitsPath::wgmma) return false;
  // Tiles of 64 tokens never straddle a page; bulk copies need 16-byte aligned sources; tensor-map
  // coordinates are int32 and strides < 2^40.
  return p.cache.page_tokens % kTmaTileTokens == 0 && p.cache.num_blocks > 0 && p.cache.num_blocks <= INT32_MAX &&
         p.cache.block_stride_bytes % 16 == 0 && p.cache.block_stride_bytes < (std::int64_t{1} << 40) &&
         reinterpret_cast<std::uintptr_t>(p.cache_bytes) % 16 == 0;
}
#endif

}  // namespace detail

double logits_accumulator_unit(Fp8Format q_fp8, Fp8Format k_fp8) {
  return detail::logits_accumulator_unit_for(detail::choose_logits_path(q_fp8, k_fp8));
}

const char* paged_mqa_logits_path(const PagedMqaLogitsParams& p) {
#if !defined(DSA_GPU_BACKEND_HIP)
  if (detail::paged_logits_tma_eligible(p)) return "tma-wgmma";
#endif
  switch (detail::choose_logits_path(p.q_fp8, p.cache.fp8)) {
    case detail::LogitsPath::wgmma: return "wgmma";
    case detail::LogitsPath::sync_f16: return "mma.sync-f16";
    case detail::LogitsPath::emulated: return "emulated";
  }
  return "emulated";
}

bool paged_mqa_logits_tma_available() {
#if !defined(DSA_GPU_BACKEND_HIP)
  return !detail::paged_logits_tma_disabled() &&
         detail::choose_logits_path(Fp8Format::e4m3fn, Fp8Format::e4m3fn) == detail::LogitsPath::wgmma;
#else
  return false;
#endif
}

void paged_mqa_logits_warmup() {
  cudaFuncAttributes attributes;
  DSA_GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(detail::paged_logits_check_grid_kernel)));
#if !defined(DSA_GPU_BACKEND_HIP)
  DSA_GPU_CHECK(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(detail::paged_logits_check_kernel)));
#endif
  detail::warm_logits_kernels<detail::PagedKSource<IndexKLayout::standard>>();
  detail::warm_logits_kernels<detail::PagedKSource<IndexKLayout::preshuffle>>();
#if !defined(DSA_GPU_BACKEND_HIP)
  // The streaming path: one real call per layout and head count on a one-page problem loads its
  // kernels, sets their shared-memory limits (the occupancy tables), looks the tensor-map encoder
  // up in the driver and pays the process's first programmatic and cluster launches (measured on
  // an H200: a first call 1.66× a cold steady-state one without this).
  constexpr std::int64_t kTokens = detail::kTmaTileTokens;
  void* buffer = nullptr;
  const std::int64_t page_bytes = kTokens * (detail::kLogitsDim + 4);
  const std::int64_t bytes = page_bytes + 64 * detail::kLogitsDim + 64 * 4 + 16 + kTokens * 4 + 16;
  DSA_GPU_CHECK(cudaMalloc(&buffer, static_cast<std::size_t>(bytes)));
  DSA_GPU_CHECK(cudaMemset(buffer, 0, static_cast<std::size_t>(bytes)));
  auto* base = static_cast<std::uint8_t*>(buffer);
  auto* ints = reinterpret_cast<std::int32_t*>(base + page_bytes + 64 * detail::kLogitsDim + 64 * 4);
  const std::int32_t context_len = static_cast<std::int32_t>(kTokens);  // one full tile, block 0
  DSA_GPU_CHECK(cudaMemcpy(ints, &context_len, sizeof context_len, cudaMemcpyHostToDevice));
  for (const IndexKLayout layout : {IndexKLayout::standard, IndexKLayout::preshuffle})
    for (const std::int64_t heads : {32, 64}) {
      PagedMqaLogitsParams p;
      p.batch = 1;
      p.num_heads = heads;
      p.head_dim = detail::kLogitsDim;
      p.cache = IndexKGeometry::packed(layout, Fp8Format::e4m3fn, 1, kTokens, detail::kLogitsDim);
      p.cache_bytes = base;
      p.q = base + page_bytes;
      p.weights = reinterpret_cast<const float*>(base + page_bytes + 64 * detail::kLogitsDim);
      p.context_lens = ints;
      p.block_table = ints + 1;
      p.max_blocks = 1;
      p.status = ints + 2;
      p.reader_layout = layout;
      p.max_ctx = kTokens;
      p.logits = reinterpret_cast<float*>(ints + 4);
      p.logits_row_stride = kTokens;
      paged_mqa_logits(p, nullptr);
    }
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  DSA_GPU_CHECK(cudaFree(buffer));
#endif
}

}  // namespace dsa::gpu
