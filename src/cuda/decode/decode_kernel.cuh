#pragma once
// __global__ wrappers of the decode CTA and the partial merge (decode_cta.cuh).
#include "cuda/decode/decode_cta.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads) decode_kernel(const __grid_constant__ DecodeParams p) {
  decode_cta<Traits>(p, static_cast<int>(blockIdx.x));
}

inline constexpr int kDecodeMergeThreads = 128;

template <class Element>
__global__ void __launch_bounds__(kDecodeMergeThreads) decode_merge_kernel(const __grid_constant__ DecodeParams p) {
  decode_merge_cta<Element>(p, static_cast<int>(blockIdx.x), static_cast<int>(threadIdx.x), kDecodeMergeThreads);
}

}  // namespace omniattn::detail::cuda
