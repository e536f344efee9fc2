#pragma once
// Entry points of graph attention on CUDA tensors (src/cuda/graph), called by graph_attention.cpp after the
// attention checks. Declared only in CUDA builds.
#include "core/problem.hpp"
#include "omniattn/tensor.hpp"

#if OMNIATTN_WITH_CUDA
namespace omniattn::detail::graph_cuda {

/// The CSR graph of a call: i32 tensors on the inputs' device, Nq query and Nk key nodes.
struct GraphArgs {
  TensorView row_offsets, col_indices;
  int64_t nq = 0, nk = 0;
};

/// Validates the graph on the device and runs the forward on p.stream (O, and LSE when given).
void forward(const ForwardProblem& p, const GraphArgs& graph);
/// Validates the graph, transposes it on the device and runs both backward passes on p.stream.
void backward(const BackwardProblem& p, const GraphArgs& graph);

}  // namespace omniattn::detail::graph_cuda
#endif
