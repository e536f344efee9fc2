// sm_80 backward kernels for D = 256, Dv = 256 (bf16 and f16), one translation unit so the head dims build in parallel.
#include "cuda/bwd/bwd_kernel.cuh"

namespace omniattn::detail::cuda {
OMNIATTN_INSTANTIATE_BWD_SM80(__nv_bfloat16, 256, 256)
OMNIATTN_INSTANTIATE_BWD_SM80(__half, 256, 256)
}  // namespace omniattn::detail::cuda
