// gather_index_k kernel for the preshuffle K-cache layout (one instantiation per file).
#include "../index_k_gather_kernel.cuh"

namespace dsa::gpu {
DSA_INSTANTIATE_INDEX_K_GATHER(dsa::IndexKLayout::preshuffle)
}  // namespace dsa::gpu
