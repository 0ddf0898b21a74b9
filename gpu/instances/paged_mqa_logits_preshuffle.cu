// paged_mqa_logits kernels for the preshuffle K-cache layout (one layout per file).
#include "../paged_mqa_logits_kernel.cuh"

namespace dsa::gpu {
DSA_INSTANTIATE_PAGED_MQA_LOGITS(dsa::IndexKLayout::preshuffle)
}  // namespace dsa::gpu
