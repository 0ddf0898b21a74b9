// quantize_index_k kernel for the standard K-cache layout (one layout per file).
#include "../index_k_store_kernel.cuh"

namespace dsa::gpu {
DSA_INSTANTIATE_INDEX_K_STORE(dsa::IndexKLayout::standard)
}  // namespace dsa::gpu
