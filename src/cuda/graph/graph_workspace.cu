#include "cuda/graph/graph_workspace.hpp"

#include <array>
#include <string>

#include "cuda/common/cuda_check.hpp"

namespace omniattn::detail::cuda::graph {

GraphWorkspace& GraphWorkspace::of_device(int device, Use use) {
  static std::array<GraphWorkspace, 2 * kMaxDevices> workspaces;
  if (device < 0 || device >= kMaxDevices)
    throw Error("device", "a CUDA device index below " + std::to_string(kMaxDevices), std::to_string(device));
  return workspaces[static_cast<std::size_t>(2 * device + static_cast<int>(use))];
}

void* GraphWorkspace::acquire(std::size_t bytes, cudaStream_t stream) {
  order_.follow(stream);
  if (bytes > capacity_) {
    std::size_t grown = capacity_ == 0 ? (std::size_t{1} << 20) : capacity_;
    while (grown < bytes) grown *= 2;
    // Stream-ordered: the old buffer is released after every kernel already enqueued on `stream` used it.
    if (data_ != nullptr) check(cudaFreeAsync(data_, stream), "cudaFreeAsync (graph attention workspace)");
    data_ = nullptr;
    capacity_ = 0;
    check(cudaMallocAsync(&data_, grown, stream), "cudaMallocAsync (graph attention workspace)");
    capacity_ = grown;
  }
  return data_;
}

}  // namespace omniattn::detail::cuda::graph
