// sm_90a forward kernels for D = 256, Dv = 256 (bf16 and f16), dense calls (80-key tiles), one translation unit so the
// rows build in parallel.
#include "cuda/flash/sm90_kernel.cuh"

namespace omniattn::detail::cuda {
template void launch_fwd_sm90_row<__nv_bfloat16, 256, 256, false>(const Sm90Params&, cudaStream_t);
template void launch_fwd_sm90_row<__half, 256, 256, false>(const Sm90Params&, cudaStream_t);
template FwdKernelInfo fwd_sm90_kernel_info_row<__nv_bfloat16, 256, 256, false>();
template FwdKernelInfo fwd_sm90_kernel_info_row<__half, 256, 256, false>();
}  // namespace omniattn::detail::cuda
