#pragma once
// Validation of a CSR graph that lives on the device, on the device: the checks of the CPU path (row_offsets
// starts at 0, ends at the edge count, never decreases; col_indices in [0, Nk), strictly increasing per row), with
// one small synchronizing read-back instead of copying the graph to the host. Errors are omniattn::Error naming
// row_offsets or col_indices, with the CPU path's wording. No kernel reads outside the two arrays, whatever they hold.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/graph/graph_check_types.hpp"

namespace omniattn::detail::cuda::graph {

/// Checks `g` (throws omniattn::Error on the first problem). Leaves in `row_starts` ([nnz] int32, scratch) the number
/// of rows i >= 1 that start at each edge: their inclusive prefix sum is the query node of every edge.
/// Synchronizes with `stream`. Returns the record (max_degree: the longest row).
GraphCheckRecord check_graph(const DeviceGraph& g, int32_t* row_starts, GraphCheckRecord* record, cudaStream_t stream);

}  // namespace omniattn::detail::cuda::graph
