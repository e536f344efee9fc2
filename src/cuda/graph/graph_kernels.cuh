#pragma once
// The __global__ wrappers of the graph-attention warps: warp w of the grid owns item w (graph_warp.cuh).
#include <cstdint>

#include "cuda/graph/graph_backward_kv.cuh"
#include "cuda/graph/graph_backward_q.cuh"
#include "cuda/graph/graph_forward.cuh"
#include "cuda/graph/graph_merge.cuh"

namespace omniattn::detail::cuda::graph {

__device__ __forceinline__ int64_t grid_warp() {
  return static_cast<int64_t>(blockIdx.x) * kWarpsPerCta + static_cast<int64_t>(threadIdx.x / 32);
}

template <class Traits>
__global__ void __launch_bounds__(kThreadsPerCta) graph_forward_kernel(const __grid_constant__ GraphFwdParams p) {
  graph_forward_warp<Traits>(p, grid_warp(), static_cast<int>(threadIdx.x % 32));
}

template <class Traits>
__global__ void __launch_bounds__(kThreadsPerCta) graph_backward_q_kernel(const __grid_constant__ GraphBwdParams p) {
  graph_backward_q_warp<Traits>(p, grid_warp(), static_cast<int>(threadIdx.x % 32));
}

template <class Traits>
__global__ void __launch_bounds__(kThreadsPerCta) graph_backward_kv_kernel(const __grid_constant__ GraphBwdParams p) {
  graph_backward_kv_warp<Traits>(p, grid_warp(), static_cast<int>(threadIdx.x % 32));
}

template <class Element>
__global__ void __launch_bounds__(kThreadsPerCta) graph_forward_merge_kernel(const __grid_constant__ GraphFwdParams p) {
  graph_forward_merge_warp<Element>(p, grid_warp(), static_cast<int>(threadIdx.x % 32));
}

template <class Element>
__global__ void __launch_bounds__(kThreadsPerCta) graph_dq_merge_kernel(const __grid_constant__ GraphBwdParams p) {
  graph_dq_merge_warp<Element>(p, grid_warp(), static_cast<int>(threadIdx.x % 32));
}

template <class Element>
__global__ void __launch_bounds__(kThreadsPerCta) graph_dkv_merge_kernel(const __grid_constant__ GraphBwdParams p) {
  graph_dkv_merge_warp<Element>(p, grid_warp(), static_cast<int>(threadIdx.x % 32));
}

}  // namespace omniattn::detail::cuda::graph
