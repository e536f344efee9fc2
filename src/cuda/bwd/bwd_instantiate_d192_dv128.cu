// sm_80 backward kernels for D = 192, Dv = 128 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/bwd/bwd_kernel.cuh"

namespace omniattn::detail::cuda {
OMNIATTN_INSTANTIATE_BWD_SM80(__nv_bfloat16, 192, 128)
OMNIATTN_INSTANTIATE_BWD_SM80(__half, 192, 128)
}  // namespace omniattn::detail::cuda
