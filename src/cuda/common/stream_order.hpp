#pragma once
// Per-device buffers reused across calls (metadata scratch, backward and decode workspaces) are safe on one stream
// by stream order. When a call arrives on another stream, that stream first waits for the work the previous call
// enqueued, which may still read or write the buffer. The previous call records an event when it lets go of the
// buffer (OrderedLock's destructor, while its stream is certainly alive): a caller may destroy its stream right
// after the call, so the next call never touches the old stream itself.
#include <cuda_runtime_api.h>

#include <mutex>

namespace omniattn::detail::cuda {

class StreamOrder {
 public:
  /// Orders `stream` after the previous user's work (when the streams differ). The buffer's device is current.
  void follow(cudaStream_t stream);
  /// Marks the end of this user's work on the buffer (an event on its stream). Errors are ignored: this runs in
  /// destructors, and a failing stream reports its error to the caller's next CUDA call anyway.
  void release() noexcept;

 private:
  cudaStream_t last_ = nullptr;
  bool used_ = false, recorded_ = false, pending_ = false;
  cudaEvent_t event_ = nullptr;  // never destroyed: lives as long as the process
};

/// The lock of a shared buffer, held from its use until the kernels that read it are enqueued; on release the
/// buffer's StreamOrder records the hand-off event.
class OrderedLock {
 public:
  OrderedLock(std::mutex& mutex, StreamOrder& order) : lock_(mutex), order_(order) {}
  ~OrderedLock() { order_.release(); }
  OrderedLock(const OrderedLock&) = delete;
  OrderedLock& operator=(const OrderedLock&) = delete;

 private:
  std::unique_lock<std::mutex> lock_;
  StreamOrder& order_;
};

}  // namespace omniattn::detail::cuda
