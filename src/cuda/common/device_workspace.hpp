#pragma once
// A grow-only device buffer reused across calls, one per device and use (metadata scratch, backward, decode and
// graph workspaces). The caller holds lock() from acquire() until the kernels that use the memory are enqueued: the
// next call reuses it, stream order keeps each call's kernels on their own data, and StreamOrder orders a call on
// another stream after the previous one. The memory is never freed at exit (that races the driver's teardown).
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <mutex>
#include <string>

#include "cuda/common/stream_order.hpp"
#include "omniattn/error.hpp"

namespace omniattn::detail::cuda {

inline constexpr int kMaxDevices = 64;

class DeviceWorkspace {
 public:
  OrderedLock lock() { return OrderedLock(mutex_, order_); }
  /// At least `bytes` of device memory, valid for work enqueued on `stream` from now on (lock held, device
  /// current). Growth is stream-ordered: the old buffer is released after the work already enqueued used it.
  void* acquire(std::size_t bytes, cudaStream_t stream);
  void* data() const { return data_; }

 protected:
  std::size_t initial_bytes_ = std::size_t{1} << 20;  // the first allocation (then doubled as needed)

 private:
  std::mutex mutex_;
  void* data_ = nullptr;
  std::size_t capacity_ = 0;
  StreamOrder order_;
};

/// The workspace of type W for device `device` (0 <= device < kMaxDevices), and `slot` of several per device.
template <class W, int kSlots = 1>
W& workspace_of_device(int device, int slot = 0) {
  static std::array<W, kMaxDevices * kSlots> workspaces;
  if (device < 0 || device >= kMaxDevices)
    throw Error("device", "a CUDA device index below " + std::to_string(kMaxDevices), std::to_string(device));
  return workspaces[static_cast<std::size_t>(device * kSlots + slot)];
}

}  // namespace omniattn::detail::cuda
