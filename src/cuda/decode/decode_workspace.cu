#include <array>
#include <string>

#include "cuda/common/cuda_check.hpp"
#include "cuda/decode/decode_workspace.hpp"

namespace omniattn::detail::cuda {

int32_t* DecodeWorkspace::merge_counters(std::size_t count, cudaStream_t stream) {
  if (count > counter_capacity_) {
    std::size_t grown = counter_capacity_ == 0 ? 1024 : counter_capacity_;
    while (grown < count) grown *= 2;
    if (counters_ != nullptr) check(cudaFreeAsync(counters_, stream), "cudaFreeAsync (decode merge counters)");
    counters_ = nullptr;
    counter_capacity_ = 0;
    check(cudaMallocAsync(reinterpret_cast<void**>(&counters_), grown * sizeof(int32_t), stream),
          "cudaMallocAsync (decode merge counters)");
    check(cudaMemsetAsync(counters_, 0, grown * sizeof(int32_t), stream), "cudaMemsetAsync (decode merge counters)");
    counter_capacity_ = grown;
  }
  return counters_;
}

}  // namespace omniattn::detail::cuda
