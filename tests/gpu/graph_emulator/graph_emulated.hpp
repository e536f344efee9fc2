#pragma once
// Host emulation of the CUDA graph-attention kernels (src/cuda/graph) on host tensors: the check kernels' bodies
// per thread, the transposition's contract on the CPU, and the forward / dQ / dK-dV warps as 128 fibers per CTA.
#include <vector>

#include "core/problem.hpp"
#include "cuda/graph/graph_check_types.hpp"

namespace omniattn::detail::cuda::graph {

/// The check kernels' record for g (graph_check.cuh); `row_starts` receives their row-start counts.
GraphCheckRecord emulate_check(const DeviceGraph& g, std::vector<int32_t>& row_starts);
/// Forward of a validated graph (p from the batched attention checks, host pointers), as graph_cuda.cu runs it: rows
/// longer than `split_entries` split into items whose partials are merged.
void emulate_forward(const ForwardProblem& p, const DeviceGraph& g, int split_entries);
/// Backward of a validated graph: check counts -> transposed graph -> plans -> dQ pass (+ merge) -> dK/dV pass
/// (+ merge).
void emulate_backward(const BackwardProblem& p, const DeviceGraph& g, int split_entries);

}  // namespace omniattn::detail::cuda::graph
