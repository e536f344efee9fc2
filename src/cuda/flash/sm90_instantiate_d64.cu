// sm_90a forward kernels for D = 64, Dv = 64 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/flash/sm90_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm90_row<__nv_bfloat16, 64, 64, false>(const Sm90Params&, cudaStream_t);
template void launch_fwd_sm90_row<__half, 64, 64, false>(const Sm90Params&, cudaStream_t);
template FwdKernelInfo fwd_sm90_kernel_info_row<__nv_bfloat16, 64, 64, false>();
template FwdKernelInfo fwd_sm90_kernel_info_row<__half, 64, 64, false>();
}  // namespace omniattn::detail::cuda
