// sm_80 backward kernels for D = 64, Dv = 64 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/bwd/bwd_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_bwd_sm80<__nv_bfloat16, 64, 64>(const BwdParams&, cudaStream_t);
template void launch_bwd_sm80<__half, 64, 64>(const BwdParams&, cudaStream_t);
}  // namespace omniattn::detail::cuda
