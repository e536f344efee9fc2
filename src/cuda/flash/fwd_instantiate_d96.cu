// sm_80 forward kernels for D = 96, Dv = 96 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/flash/fwd_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm80<__nv_bfloat16, 96, 96>(const FwdParams&, cudaStream_t);
template void launch_fwd_sm80<__half, 96, 96>(const FwdParams&, cudaStream_t);
template FwdKernelInfo fwd_sm80_kernel_info<__nv_bfloat16, 96, 96>();
template FwdKernelInfo fwd_sm80_kernel_info<__half, 96, 96>();
}  // namespace omniattn::detail::cuda
