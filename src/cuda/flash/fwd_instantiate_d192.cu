// sm_80 forward kernels for D = 192, Dv = 192 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/flash/fwd_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm80<__nv_bfloat16, 192, 192>(const FwdParams&, cudaStream_t);
template void launch_fwd_sm80<__half, 192, 192>(const FwdParams&, cudaStream_t);
template FwdKernelInfo fwd_sm80_kernel_info<__nv_bfloat16, 192, 192>();
template FwdKernelInfo fwd_sm80_kernel_info<__half, 192, 192>();
}  // namespace omniattn::detail::cuda
