// sm_90a forward kernels for D = 128, Dv = 128 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/flash/sm90_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm90_row<__nv_bfloat16, 128, 128, false>(const Sm90Params&, cudaStream_t);
template void launch_fwd_sm90_row<__half, 128, 128, false>(const Sm90Params&, cudaStream_t);
template FwdKernelInfo fwd_sm90_kernel_info_row<__nv_bfloat16, 128, 128, false>();
template FwdKernelInfo fwd_sm90_kernel_info_row<__half, 128, 128, false>();
}  // namespace omniattn::detail::cuda
