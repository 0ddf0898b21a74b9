// paged_mqa_logits kernels for the standard K-cache layout (one layout per file).
#include "../paged_mqa_logits_kernel.cuh"

namespace dsa::gpu {
DSA_INSTANTIATE_PAGED_MQA_LOGITS(dsa::IndexKLayout::standard)
}  // namespace dsa::gpu
