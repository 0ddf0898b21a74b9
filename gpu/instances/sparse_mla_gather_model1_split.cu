// Staged sparse MLA gather kernel for layout MODEL1_SPLIT (one instantiation per file keeps builds parallel).
#include "../sparse_mla_gather_kernel.cuh"

namespace dsa::gpu {
DSA_INSTANTIATE_SPARSE_MLA_GATHER(dsa::MlaLayout::MODEL1_SPLIT)
}  // namespace dsa::gpu
