// Instantiation and launch of the graph-attention backward kernels: the dQ pass (graph_backward_q.cuh), which also
// writes each row's (LSE, D), then the dK/dV pass over the transposed graph (graph_backward_kv.cuh).
#include "cuda/common/cuda_check.hpp"
#include "cuda/graph/graph_dispatch.cuh"
#include "cuda/graph/graph_kernels.cuh"
#include "cuda/graph/graph_launch.hpp"

namespace omniattn::detail::cuda::graph {

void launch_backward(const GraphBwdParams& p, DType dtype, int heads, cudaStream_t stream) {
  const int64_t q_warps = p.q_items * p.hkv * p.chunks, kv_warps = p.kv_items * p.hkv;
  const int64_t q_merges = p.q_plan.items ? p.q_slots * p.hq : 0, kv_merges = p.kv_plan.items ? p.kv_slots * p.hkv : 0;
  if (q_warps > 0)
    with_traits<kBwdMaxHeads>(dtype, p.lanes, heads, [&]<class Traits>() {
      graph_backward_q_kernel<Traits><<<ctas_for(q_warps), kThreadsPerCta, 0, stream>>>(p);
      check_launch("graph attention: graph_backward_q_kernel");
      if (q_merges > 0) {
        graph_dq_merge_kernel<typename Traits::Element><<<ctas_for(q_merges), kThreadsPerCta, 0, stream>>>(p);
        check_launch("graph attention: graph_dq_merge_kernel");
      }
    });
  if (kv_warps > 0)
    with_traits<1>(dtype, p.lanes, 1, [&]<class Traits>() {
      graph_backward_kv_kernel<Traits><<<ctas_for(kv_warps), kThreadsPerCta, 0, stream>>>(p);
      check_launch("graph attention: graph_backward_kv_kernel");
      if (kv_merges > 0) {
        graph_dkv_merge_kernel<typename Traits::Element><<<ctas_for(kv_merges), kThreadsPerCta, 0, stream>>>(p);
        check_launch("graph attention: graph_dkv_merge_kernel");
      }
    });
}

}  // namespace omniattn::detail::cuda::graph
