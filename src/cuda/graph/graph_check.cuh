#pragma once
// Per-thread bodies of the graph check kernels (graph_check.cu): plain loads and integer atomics only, so that any
// row_offsets / col_indices content is read inside the two arrays and nowhere else.
#include <cstdint>

#include "cuda/graph/graph_check_types.hpp"

namespace omniattn::detail::cuda::graph {

#if defined(OMNIATTN_CUDA_EMULATION)  // fibers never run concurrently: plain read-modify-writes are atomic
inline void atomic_min(uint32_t* address, uint32_t value) { *address = value < *address ? value : *address; }
inline void atomic_increment(int32_t* address) { ++*address; }
inline void atomic_max(int32_t* address, int32_t value) { *address = value > *address ? value : *address; }
#else
__device__ __forceinline__ void atomic_min(uint32_t* address, uint32_t value) { atomicMin(address, value); }
__device__ __forceinline__ void atomic_increment(int32_t* address) { atomicAdd(address, 1); }
__device__ __forceinline__ void atomic_max(int32_t* address, int32_t value) { atomicMax(address, value); }
#endif

/// Offset i in [0, nq]: the order of row i, and its start counted in row_starts when it lies in [0, nnz) (rows
/// i >= 1 only: the inclusive prefix sum of the counts is then the query node of each edge, for valid offsets).
__device__ __forceinline__ void check_row(const DeviceGraph& g, int64_t i, int32_t* row_starts,
                                          GraphCheckRecord* record) {
  const int32_t start = g.row_offsets[i];
  if (i == 0) record->first = start;
  if (i == g.nq) {
    record->last = start;
    return;
  }
  const int32_t next = g.row_offsets[i + 1];
  if (next < start) atomic_min(&record->bad_row, static_cast<uint32_t>(i));
  else atomic_max(&record->max_degree, next - start);
  if (i >= 1 && start >= 0 && start < g.nnz) atomic_increment(&row_starts[start]);
}

/// Edge e in [0, nnz) (after every check_row): its key in range, and above the previous key unless e starts a row.
/// Meaningful once the offsets are valid (their errors are reported first).
__device__ __forceinline__ void check_edge(const DeviceGraph& g, int64_t e, const int32_t* row_starts,
                                           GraphCheckRecord* record) {
  const int32_t key = g.col_indices[e];
  bool bad = key < 0 || key >= g.nk;
  if (!bad && e > 0 && row_starts[e] == 0) bad = key <= g.col_indices[e - 1];
  if (bad) atomic_min(&record->bad_edge, static_cast<uint32_t>(e));
}

/// Transposed offsets: the first position of a key >= j in the sorted keys (j in [0, nk]).
__device__ __forceinline__ int32_t key_offset(const uint32_t* sorted_keys, int64_t nnz, int64_t j) {
  int64_t lo = 0, hi = nnz;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (sorted_keys[mid] < static_cast<uint32_t>(j)) lo = mid + 1;
    else hi = mid;
  }
  return static_cast<int32_t>(lo);
}

}  // namespace omniattn::detail::cuda::graph
