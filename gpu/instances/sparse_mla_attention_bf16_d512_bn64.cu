// Sparse MLA attention kernel over bf16 rows (staged / prefill), D_qk 512, 64-key tiles (one instantiation per file).
#include "../sparse_mla_attention_kernel.cuh"

namespace dsa::gpu::detail {
DSA_INSTANTIATE_SPARSE_MLA_ATTENTION(512, 64, Bf16Loader)
}  // namespace dsa::gpu::detail
