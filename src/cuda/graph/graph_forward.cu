// Instantiation and launch of the graph-attention forward kernel (graph_forward.cuh).
#include "cuda/common/cuda_check.hpp"
#include "cuda/graph/graph_dispatch.cuh"
#include "cuda/graph/graph_kernels.cuh"
#include "cuda/graph/graph_launch.hpp"

namespace omniattn::detail::cuda::graph {

void launch_forward(const GraphFwdParams& p, DType dtype, int heads, cudaStream_t stream) {
  const int64_t warps = p.items * p.hkv * p.chunks, merges = p.plan.items ? p.slots * p.hq : 0;
  if (warps == 0) return;
  with_traits<kFwdMaxHeads>(dtype, p.lanes, heads, [&]<class Traits>() {
    graph_forward_kernel<Traits><<<ctas_for(warps), kThreadsPerCta, 0, stream>>>(p);
    check_launch("graph attention: graph_forward_kernel");
    if (merges > 0) {  // split rows' slots into O and LSE, after every item wrote them
      graph_forward_merge_kernel<typename Traits::Element><<<ctas_for(merges), kThreadsPerCta, 0, stream>>>(p);
      check_launch("graph attention: graph_forward_merge_kernel");
    }
  });
}

}  // namespace omniattn::detail::cuda::graph
