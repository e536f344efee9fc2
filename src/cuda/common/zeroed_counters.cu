#include "cuda/common/zeroed_counters.hpp"

#include "cuda/common/cuda_check.hpp"

namespace omniattn::detail::cuda {

int32_t* ZeroedCounters::get(std::size_t count, cudaStream_t stream) {
  const std::size_t bytes = count * sizeof(int32_t);
  void* data = acquire(bytes, stream);
  if (bytes > zeroed_bytes_) {  // new (or grown: a fresh allocation) memory
    check(cudaMemsetAsync(data, 0, bytes, stream), "cudaMemsetAsync (scheduler counters)");
    zeroed_bytes_ = bytes;
  }
  return static_cast<int32_t*>(data);
}

}  // namespace omniattn::detail::cuda
