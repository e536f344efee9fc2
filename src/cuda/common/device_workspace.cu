#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_workspace.hpp"

namespace omniattn::detail::cuda {

void* DeviceWorkspace::acquire(std::size_t bytes, cudaStream_t stream) {
  order_.follow(stream);
  if (bytes > capacity_) {
    std::size_t grown = capacity_ == 0 ? initial_bytes_ : capacity_;
    while (grown < bytes) grown *= 2;
    if (data_ != nullptr) check(cudaFreeAsync(data_, stream), "cudaFreeAsync (device workspace)");
    data_ = nullptr;
    capacity_ = 0;
    check(cudaMallocAsync(&data_, grown, stream), "cudaMallocAsync (device workspace)");
    capacity_ = grown;
  }
  return data_;
}

}  // namespace omniattn::detail::cuda
