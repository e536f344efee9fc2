#pragma once
// Launches of the graph-attention kernels: the one runtime -> template conversion (element type, vectors per lane,
// heads per warp) of the family. Callers have validated the arguments and made the device current.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/graph/graph_params.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda::graph {

/// Forward over Nq x Hkv x chunks items; `heads` = heads_per_warp(group, kFwdMaxHeads).
void launch_forward(const GraphFwdParams& p, DType dtype, int heads, cudaStream_t stream);
/// dQ pass over Nq x Hkv x chunks items (heads = heads_per_warp(group, kBwdMaxHeads)), then dK/dV over Nk x Hkv.
void launch_backward(const GraphBwdParams& p, DType dtype, int heads, cudaStream_t stream);

}  // namespace omniattn::detail::cuda::graph
