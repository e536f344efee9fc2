// sm_90a forward kernels for the block-sparse calls of D = 256, Dv = 256 (bf16 and f16): the 64-key row (its dense
// row's 80-key tiles divide no mask block), one translation unit so the rows build in parallel.
#include "cuda/flash/sm90_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm90_row<__nv_bfloat16, 256, 256, true>(const Sm90Params&, cudaStream_t);
template void launch_fwd_sm90_row<__half, 256, 256, true>(const Sm90Params&, cudaStream_t);
}  // namespace omniattn::detail::cuda
