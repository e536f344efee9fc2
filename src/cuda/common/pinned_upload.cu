#include <cstring>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/pinned_upload.hpp"

namespace omniattn::detail::cuda {

void PinnedUploader::upload(void* dst, const void* src, std::size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  Slot& slot = slots_[next_++ % slots_.size()];
  if (slot.pending) check(cudaEventSynchronize(slot.done), "cudaEventSynchronize (pinned staging slot)");
  slot.pending = false;
  if (slot.done == nullptr) check(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming), "cudaEventCreate");
  if (bytes > slot.capacity) {
    std::size_t grown = slot.capacity == 0 ? (std::size_t{256} << 10) : slot.capacity;  // cudaMallocHost takes ms
    while (grown < bytes) grown *= 4;
    if (slot.host != nullptr) check(cudaFreeHost(slot.host), "cudaFreeHost (pinned staging)");
    slot.host = nullptr;
    slot.capacity = 0;
    check(cudaMallocHost(&slot.host, grown), "cudaMallocHost (pinned staging)");
    slot.capacity = grown;
  }
  std::memcpy(slot.host, src, bytes);
  check(cudaMemcpyAsync(dst, slot.host, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync (metadata upload)");
  check(cudaEventRecord(slot.done, stream), "cudaEventRecord (pinned staging slot)");
  slot.pending = true;
}

}  // namespace omniattn::detail::cuda
