// The decode kernels at head dim 128 (bf16, f16; 16 and 64 packed query rows per CTA).
#include "cuda/decode/decode_launch.cuh"

namespace omniattn::detail::cuda {
OMNIATTN_INSTANTIATE_DECODE(128)
}
