#pragma once
// Device memory the library itself holds while a benchmarked call runs (beyond the caller's tensors).
//
// omniattn allocates its per-call metadata with cudaMallocAsync (src/cuda/common/device_scratch.*), i.e. from
// the device's default stream-ordered pool; the benchmark allocates its own tensors with plain cudaMalloc, so
// everything the pool holds is the library's. The probe reads the pool's high-water mark of used memory over
// the calls, plus any drop of free device memory (cudaMemGetInfo) that the pool's own growth does not explain:
// a plain cudaMalloc the library kept. Not seen: a plain cudaMalloc + cudaFree inside one call.
#include <cstddef>

namespace omniattn::bench {

class MemoryProbe {
 public:
  /// Call after the caller's tensors are allocated and before the calls to measure.
  void start();
  /// Bytes the library held at its peak since start().
  std::size_t library_bytes() const;

 private:
  std::size_t free_before_ = 0, reserved_before_ = 0;
};

}  // namespace omniattn::bench
