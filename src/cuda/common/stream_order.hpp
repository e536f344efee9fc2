#pragma once
// Per-device buffers reused across calls (metadata scratch, backward workspace) are safe on one stream by
// stream order. When a call arrives on another stream, that stream first waits for the work already enqueued
// on the previous one, which may still read or write the buffer.
#include <cuda_runtime_api.h>

namespace omniattn::detail::cuda {

class StreamOrder {
 public:
  /// Orders `stream` after the previous user's stream (when they differ). The buffer's device is current.
  void follow(cudaStream_t stream);

 private:
  cudaStream_t last_ = nullptr;
  bool used_ = false;
  cudaEvent_t event_ = nullptr;  // never destroyed: lives as long as the process
};

}  // namespace omniattn::detail::cuda
