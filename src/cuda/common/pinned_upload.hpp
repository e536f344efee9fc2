#pragma once
// Host-to-device copies of per-call metadata (plans, per-sequence geometry) through pinned staging memory.
// cudaMemcpyAsync from pageable memory stages the bytes synchronously inside the call (several µs, the bulk of a
// short decode step's host time); from pinned memory it only enqueues. A ring of slots lets the host run a few
// calls ahead; a slot is rewritten only after the copy that last read it has run (its event).
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>

namespace omniattn::detail::cuda {

class PinnedUploader {
 public:
  /// Enqueues a copy of `bytes` from `src` (any host memory, copied now) to `dst` on `stream`. The device of
  /// `stream` is current. Callers serialize (they hold their buffer's lock).
  void upload(void* dst, const void* src, std::size_t bytes, cudaStream_t stream);

 private:
  struct Slot {
    void* host = nullptr;  // pinned; never freed (lives as long as the process, as the device buffers do)
    std::size_t capacity = 0;
    cudaEvent_t done = nullptr;
    bool pending = false;
  };
  std::array<Slot, 4> slots_{};
  std::size_t next_ = 0;
};

}  // namespace omniattn::detail::cuda
