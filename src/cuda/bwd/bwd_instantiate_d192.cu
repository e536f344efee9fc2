// sm_80 backward kernels for D = 192, Dv = 192 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/bwd/bwd_kernel.cuh"

namespace omniattn::detail::cuda {
OMNIATTN_INSTANTIATE_BWD_SM80(__nv_bfloat16, 192, 192)
OMNIATTN_INSTANTIATE_BWD_SM80(__half, 192, 192)
}  // namespace omniattn::detail::cuda
