#pragma once
// A grow-only device buffer per device for one decode call's plan and partial results. The caller holds lock()
// from the upload until its kernels are enqueued; stream order (and StreamOrder across streams) keeps each call's
// kernels reading their own plan, as with DeviceScratch.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

#include "cuda/common/pinned_upload.hpp"
#include "cuda/common/stream_order.hpp"

namespace omniattn::detail::cuda {

class DecodeWorkspace {
 public:
  static DecodeWorkspace& of_device(int device);
  OrderedLock lock() { return OrderedLock(mutex_, order_); }
  /// At least `bytes` of device memory, valid for work enqueued on `stream` from now on (lock held, device current).
  void* acquire(std::size_t bytes, cudaStream_t stream);
  /// `count` zeroed int32 merge counters, valid for work enqueued on `stream` after acquire() (lock held). The
  /// kernels leave them zero again, so they are zeroed only when the array grows.
  int32_t* merge_counters(std::size_t count, cudaStream_t stream);
  /// Copies host bytes into the buffer at `offset` on `stream`, through pinned staging (lock held).
  void upload(std::size_t offset, const void* host, std::size_t bytes, cudaStream_t stream) {
    uploader_.upload(static_cast<unsigned char*>(data_) + offset, host, bytes, stream);
  }

 private:
  std::mutex mutex_;
  void* data_ = nullptr;  // never freed: lives as long as the process
  std::size_t capacity_ = 0;
  int32_t* counters_ = nullptr;  // never freed, as data_
  std::size_t counter_capacity_ = 0;
  StreamOrder order_;
  PinnedUploader uploader_;
};

}  // namespace omniattn::detail::cuda
