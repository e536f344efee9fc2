// Transposition by sorting: the query node of each edge is the prefix sum of the row-start counts; a stable radix
// sort of the edges by key node (CUB; edges enter in query-node order, so each key's sources come out ascending)
// gives the sources, and a binary search per key node in the sorted keys the offsets.
#include "cuda/graph/graph_transpose.hpp"

#include <algorithm>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "cuda/common/cuda_check.hpp"
#include "cuda/graph/graph_check.cuh"

namespace omniattn::detail::cuda::graph {
namespace {

constexpr int kThreads = 256;

int key_bits(int64_t nk) {
  int bits = 1;
  while (bits < 31 && (int64_t{1} << bits) < nk) ++bits;
  return bits;
}

__global__ void key_offsets_kernel(const uint32_t* sorted_keys, int64_t nnz, int64_t nk, int32_t* offsets) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (j <= nk) offsets[j] = key_offset(sorted_keys, nnz, j);
}

}  // namespace

std::size_t transpose_scratch_bytes(int64_t nnz, int64_t nk) {
  const int n = static_cast<int>(nnz);
  std::size_t scan = 0, sort = 0;
  check(cub::DeviceScan::InclusiveSum(nullptr, scan, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                      n),
        "cub::DeviceScan::InclusiveSum (size)");
  check(cub::DeviceRadixSort::SortPairs(nullptr, sort, static_cast<const uint32_t*>(nullptr),
                                        static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                        static_cast<int32_t*>(nullptr), n, 0, key_bits(nk)),
        "cub::DeviceRadixSort::SortPairs (size)");
  return std::max<std::size_t>({scan, sort, 1});
}

void transpose_graph(const int32_t* col_indices, int64_t nnz, int64_t nk, int32_t* row_starts, int32_t* edge_rows,
                     void* scratch, std::size_t scratch_bytes, const TransposedGraph& out, cudaStream_t stream) {
  const int n = static_cast<int>(nnz);
  if (n > 0) {
    std::size_t bytes = scratch_bytes;
    check(cub::DeviceScan::InclusiveSum(scratch, bytes, static_cast<const int32_t*>(row_starts), edge_rows, n, stream),
          "cub::DeviceScan::InclusiveSum (graph edge rows)");
    // Keys are validated non-negative: sorted as unsigned, on the bits that can be set. The row-start counts are
    // dead after the scan: their memory takes the sorted keys.
    auto* sorted_keys = reinterpret_cast<uint32_t*>(row_starts);
    bytes = scratch_bytes;
    check(cub::DeviceRadixSort::SortPairs(scratch, bytes, reinterpret_cast<const uint32_t*>(col_indices), sorted_keys,
                                          static_cast<const int32_t*>(edge_rows), out.sources, n, 0, key_bits(nk),
                                          stream),
          "cub::DeviceRadixSort::SortPairs (graph transposition)");
  }
  const int blocks = static_cast<int>((nk + 1 + kThreads - 1) / kThreads);
  key_offsets_kernel<<<blocks, kThreads, 0, stream>>>(reinterpret_cast<const uint32_t*>(row_starts), nnz, nk,
                                                      out.offsets);
  check_launch("graph attention: key_offsets_kernel");
}

}  // namespace omniattn::detail::cuda::graph
