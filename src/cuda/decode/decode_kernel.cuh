#pragma once
// The __global__ wrapper of the decode CTA (decode_cta.cuh).
#include "cuda/decode/decode_cta.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads) decode_kernel(const __grid_constant__ DecodeParams p) {
  decode_cta<Traits>(p, static_cast<int>(blockIdx.x));
}

}  // namespace omniattn::detail::cuda
