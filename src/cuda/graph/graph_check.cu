#include "cuda/graph/graph_check.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/common/cuda_check.hpp"
#include "cuda/graph/graph_check.cuh"
#include "omniattn/error.hpp"

namespace omniattn::detail::cuda::graph {
namespace {

constexpr int kThreads = 256;
constexpr uint32_t kNone = 0xffffffffu;

int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

__global__ void check_rows_kernel(DeviceGraph g, int32_t* row_starts, GraphCheckRecord* record) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i <= g.nq) check_row(g, i, row_starts, record);
}

__global__ void check_edges_kernel(DeviceGraph g, const int32_t* row_starts, GraphCheckRecord* record) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (e < g.nnz) check_edge(g, e, row_starts, record);
}

template <class T>
T read_one(const T* device, cudaStream_t stream) {
  T host{};
  check(cudaMemcpyAsync(&host, device, sizeof(T), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync (graph check)");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (graph check)");
  return host;
}

// The error for edge e (error path only: copies the offsets to find e's row).
[[noreturn]] void fail_edge(const DeviceGraph& g, int64_t e, cudaStream_t stream) {
  std::vector<int32_t> rows(static_cast<size_t>(g.nq + 1));
  check(cudaMemcpyAsync(rows.data(), g.row_offsets, rows.size() * 4, cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync (graph check)");
  const int32_t key = read_one(g.col_indices + e, stream);  // synchronizes the copy above too
  const int64_t row = std::upper_bound(rows.begin(), rows.end(), static_cast<int32_t>(e)) - rows.begin() - 1;
  if (key < 0 || key >= g.nk)
    throw Error("col_indices", "key nodes in [0, " + std::to_string(g.nk) + ")",
                std::to_string(key) + " in row " + std::to_string(row));
  const int32_t previous = read_one(g.col_indices + e - 1, stream);
  throw Error("col_indices", "strictly increasing keys per row",
              std::to_string(key) + " after " + std::to_string(previous) + " in row " + std::to_string(row));
}

}  // namespace

GraphCheckRecord check_graph(const DeviceGraph& g, int32_t* row_starts, GraphCheckRecord* record, cudaStream_t stream) {
  check(cudaMemsetAsync(record, 0xff, sizeof(GraphCheckRecord), stream), "cudaMemsetAsync (graph check)");
  if (g.nnz > 0)
    check(cudaMemsetAsync(row_starts, 0, static_cast<size_t>(g.nnz) * 4, stream), "cudaMemsetAsync (graph check)");
  check_rows_kernel<<<blocks_for(g.nq + 1), kThreads, 0, stream>>>(g, row_starts, record);
  check_launch("graph attention: check_rows_kernel");
  if (g.nnz > 0) {
    check_edges_kernel<<<blocks_for(g.nnz), kThreads, 0, stream>>>(g, row_starts, record);
    check_launch("graph attention: check_edges_kernel");
  }
  const GraphCheckRecord r = read_one(record, stream);
  if (r.first != 0 || r.last != g.nnz)
    throw Error("row_offsets", "first entry 0 and last " + std::to_string(g.nnz) + " (the edge count)",
                std::to_string(r.first) + " and " + std::to_string(r.last));
  if (r.bad_row != kNone) throw Error("row_offsets", "non-decreasing entries", "row " + std::to_string(r.bad_row));
  if (r.bad_edge != kNone) fail_edge(g, r.bad_edge, stream);
  return r;
}

}  // namespace omniattn::detail::cuda::graph
