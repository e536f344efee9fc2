// sm_90a forward kernels for D = 64, Dv = 64 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/flash/sm90_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm90<__nv_bfloat16, 64, 64>(const Sm90Params&, cudaStream_t);
template void launch_fwd_sm90<__half, 64, 64>(const Sm90Params&, cudaStream_t);
template FwdKernelInfo fwd_sm90_kernel_info<__nv_bfloat16, 64, 64>();
template FwdKernelInfo fwd_sm90_kernel_info<__half, 64, 64>();
}  // namespace omniattn::detail::cuda
