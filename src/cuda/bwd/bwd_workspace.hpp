#pragma once
// A grow-only device workspace per device for the backward's f32 dQ accumulator, row statistics and
// semaphores (sizes: BwdLaunch::workspace_bytes). The caller holds lock() from acquire() until its kernels
// are enqueued: the next call reuses the memory, and stream order keeps each call's kernels on their own data.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <mutex>

#include "cuda/common/stream_order.hpp"

namespace omniattn::detail::cuda {

class BwdWorkspace {
 public:
  static BwdWorkspace& of_device(int device);
  static constexpr int kMaxDevices = 64;

  OrderedLock lock() { return OrderedLock(mutex_, order_); }
  /// At least `bytes` of device memory (256-byte aligned), valid for work enqueued on `stream` from now on.
  /// The caller holds lock() and the device is current.
  void* acquire(std::size_t bytes, cudaStream_t stream);

 private:
  std::mutex mutex_;
  void* data_ = nullptr;  // never freed at exit (freeing then races driver teardown)
  std::size_t capacity_ = 0;
  StreamOrder order_;
};

}  // namespace omniattn::detail::cuda
