// quantize_index_k kernel for the preshuffle K-cache layout (one layout per file).
#include "../index_k_store_kernel.cuh"

namespace dsa::gpu {
DSA_INSTANTIATE_INDEX_K_STORE(dsa::IndexKLayout::preshuffle)
}  // namespace dsa::gpu
