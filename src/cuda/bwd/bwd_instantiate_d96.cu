// sm_80 backward kernels for D = 96, Dv = 96 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/bwd/bwd_kernel.cuh"

namespace omniattn::detail::cuda {
OMNIATTN_INSTANTIATE_BWD_SM80(__nv_bfloat16, 96, 96)
OMNIATTN_INSTANTIATE_BWD_SM80(__half, 96, 96)
}  // namespace omniattn::detail::cuda
