// sm_90a forward kernels for D = 256, Dv = 256 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/flash/sm90_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm90<__nv_bfloat16, 256, 256>(const Sm90Params&, cudaStream_t);
template void launch_fwd_sm90<__half, 256, 256>(const Sm90Params&, cudaStream_t);
template FwdKernelInfo fwd_sm90_kernel_info<__nv_bfloat16, 256, 256>();
template FwdKernelInfo fwd_sm90_kernel_info<__half, 256, 256>();
}  // namespace omniattn::detail::cuda
