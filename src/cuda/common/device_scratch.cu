#include <array>
#include <string>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_scratch.hpp"

namespace omniattn::detail::cuda {

DeviceScratch& DeviceScratch::of_device(int device) {
  static std::array<DeviceScratch, kMaxDevices> scratch;
  if (device < 0 || device >= kMaxDevices)
    throw Error("device", "a CUDA device index below " + std::to_string(kMaxDevices), std::to_string(device));
  return scratch[static_cast<std::size_t>(device)];
}

void* DeviceScratch::upload(const void* host, std::size_t bytes, cudaStream_t stream) {
  order_.follow(stream);
  if (bytes > capacity_) {
    std::size_t grown = capacity_ == 0 ? 4096 : capacity_;
    while (grown < bytes) grown *= 2;
    // Stream-ordered: the old buffer is released after every kernel already enqueued on `stream` used it.
    if (data_ != nullptr) check(cudaFreeAsync(data_, stream), "cudaFreeAsync (metadata scratch)");
    data_ = nullptr;
    capacity_ = 0;
    check(cudaMallocAsync(&data_, grown, stream), "cudaMallocAsync (metadata scratch)");
    capacity_ = grown;
  }
  uploader_.upload(data_, host, bytes, stream);
  return data_;
}

}  // namespace omniattn::detail::cuda
