#pragma once
// A small grow-only device buffer per device for per-call metadata (per-sequence offsets and lengths).
// The caller holds lock() from the upload until its kernel is enqueued: the next call reuses the buffer, and
// stream order (upload, kernel, next upload, ...) keeps each kernel reading its own metadata.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <mutex>

#include "cuda/common/pinned_upload.hpp"
#include "cuda/common/stream_order.hpp"

namespace omniattn::detail::cuda {

class DeviceScratch {
 public:
  /// The scratch of device `device` (0 <= device < kMaxDevices).
  static DeviceScratch& of_device(int device);
  static constexpr int kMaxDevices = 64;

  OrderedLock lock() { return OrderedLock(mutex_, order_); }
  /// Copies `bytes` from host memory into the buffer (stream-ordered) and returns its device address.
  /// The caller holds lock() and the device is current.
  void* upload(const void* host, std::size_t bytes, cudaStream_t stream);

 private:
  std::mutex mutex_;
  void* data_ = nullptr;  // never freed: lives as long as the process (freeing at exit races driver teardown)
  std::size_t capacity_ = 0;
  StreamOrder order_;
  PinnedUploader uploader_;
};

}  // namespace omniattn::detail::cuda
