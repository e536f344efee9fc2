#include <array>
#include <string>

#include "cuda/common/cuda_check.hpp"
#include "cuda/decode/decode_workspace.hpp"

namespace omniattn::detail::cuda {

DecodeWorkspace& DecodeWorkspace::of_device(int device) {
  static std::array<DecodeWorkspace, 64> workspaces;
  if (device < 0 || device >= 64)
    throw Error("device", "a CUDA device index below 64", std::to_string(device));
  return workspaces[static_cast<std::size_t>(device)];
}

void* DecodeWorkspace::acquire(std::size_t bytes, cudaStream_t stream) {
  order_.follow(stream);
  if (bytes > capacity_) {
    std::size_t grown = capacity_ == 0 ? (1u << 20) : capacity_;
    while (grown < bytes) grown *= 2;
    // Stream-ordered: the old buffer is released after the kernels already enqueued on `stream` used it.
    if (data_ != nullptr) check(cudaFreeAsync(data_, stream), "cudaFreeAsync (decode workspace)");
    data_ = nullptr;
    capacity_ = 0;
    check(cudaMallocAsync(&data_, grown, stream), "cudaMallocAsync (decode workspace)");
    capacity_ = grown;
  }
  return data_;
}

int32_t* DecodeWorkspace::merge_counters(std::size_t count, cudaStream_t stream) {
  if (count > counter_capacity_) {
    std::size_t grown = counter_capacity_ == 0 ? 1024 : counter_capacity_;
    while (grown < count) grown *= 2;
    if (counters_ != nullptr) check(cudaFreeAsync(counters_, stream), "cudaFreeAsync (decode merge counters)");
    counters_ = nullptr;
    counter_capacity_ = 0;
    check(cudaMallocAsync(reinterpret_cast<void**>(&counters_), grown * sizeof(int32_t), stream),
          "cudaMallocAsync (decode merge counters)");
    check(cudaMemsetAsync(counters_, 0, grown * sizeof(int32_t), stream), "cudaMemsetAsync (decode merge counters)");
    counter_capacity_ = grown;
  }
  return counters_;
}

}  // namespace omniattn::detail::cuda
