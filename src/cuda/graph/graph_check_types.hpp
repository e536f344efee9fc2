#pragma once
// The graph as the check kernels see it, and what they found.
#include <cstdint>

namespace omniattn::detail::cuda::graph {

struct DeviceGraph {
  const int32_t* row_offsets = nullptr;  // [nq + 1]
  const int32_t* col_indices = nullptr;  // [nnz]
  int64_t nq = 0, nk = 0, nnz = 0;
};

/// What the check kernels found (unsigned minima: UINT32_MAX = nothing).
struct GraphCheckRecord {
  uint32_t bad_row;     // first i with row_offsets[i + 1] < row_offsets[i]
  uint32_t bad_edge;    // first e with col_indices[e] out of range or not above its predecessor in the row
  int32_t first, last;  // row_offsets[0], row_offsets[nq]
  int32_t max_degree;   // largest row_offsets[i + 1] - row_offsets[i] (-1: no row)
};

}  // namespace omniattn::detail::cuda::graph
