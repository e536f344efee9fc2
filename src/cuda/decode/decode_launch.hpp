#pragma once
// Host side of the decode kernels: one launch per (head dim, dtype, row warps), instantiated per head dim in
// decode_instantiate_d*.cu so that the head dims compile in parallel.
#include <cuda_runtime_api.h>

#include "cuda/decode/decode_params.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {

/// Resident CTAs per SM of the decode kernel (the planner's grid = SMs x this) on the current device.
template <int kD>
int decode_ctas_per_sm(DType dtype, int row_warps);

/// Enqueues the decode kernel (grid CTAs; split segments are merged inside it) on `stream`.
template <int kD>
void launch_decode(DType dtype, int row_warps, const DecodeParams& p, int grid, cudaStream_t stream);

}  // namespace omniattn::detail::cuda
