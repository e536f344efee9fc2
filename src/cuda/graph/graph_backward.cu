// Instantiation and launch of the graph-attention backward kernels: the dQ pass (graph_backward_q.cuh), which also
// writes each row's (LSE, D), then the dK/dV pass over the transposed graph (graph_backward_kv.cuh).
#include "cuda/common/cuda_check.hpp"
#include "cuda/graph/graph_dispatch.cuh"
#include "cuda/graph/graph_kernels.cuh"
#include "cuda/graph/graph_launch.hpp"

namespace omniattn::detail::cuda::graph {

void launch_backward(const GraphBwdParams& p, DType dtype, int heads, cudaStream_t stream) {
  const int64_t q_warps = p.nq * p.hkv * p.chunks, kv_warps = p.nk * p.hkv;
  if (q_warps > 0)
    with_traits<kBwdMaxHeads>(dtype, p.lanes, heads, [&]<class Traits>() {
      graph_backward_q_kernel<Traits><<<ctas_for(q_warps), kThreadsPerCta, 0, stream>>>(p);
      check_launch("graph attention: graph_backward_q_kernel");
    });
  if (kv_warps > 0)
    with_traits<1>(dtype, p.lanes, 1, [&]<class Traits>() {
      graph_backward_kv_kernel<Traits><<<ctas_for(kv_warps), kThreadsPerCta, 0, stream>>>(p);
      check_launch("graph attention: graph_backward_kv_kernel");
    });
}

}  // namespace omniattn::detail::cuda::graph
