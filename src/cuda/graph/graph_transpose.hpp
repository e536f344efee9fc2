#pragma once
// The transposed graph on the device, for the backward's dK/dV pass: per key node, the query nodes with an edge to
// it, ascending (a stable counting order, so that every run sums a key's gradients in the same order).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace omniattn::detail::cuda::graph {

struct TransposedGraph {
  int32_t* offsets = nullptr;  // [nk + 1]
  int32_t* sources = nullptr;  // [nnz] query node of each entry
};

/// Scratch bytes of transpose_graph (CUB's temporary storage) for nnz edges.
std::size_t transpose_scratch_bytes(int64_t nnz, int64_t nk);

/// Builds `out` from validated col_indices and the row-start counts of check_graph. `row_starts` and `edge_rows`
/// ([nnz] each) are consumed as scratch; `scratch` holds transpose_scratch_bytes. Stream-ordered, no host sync.
void transpose_graph(const int32_t* col_indices, int64_t nnz, int64_t nk, int32_t* row_starts, int32_t* edge_rows,
                     void* scratch, std::size_t scratch_bytes, const TransposedGraph& out, cudaStream_t stream);

}  // namespace omniattn::detail::cuda::graph
