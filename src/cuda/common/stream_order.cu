#include "cuda/common/cuda_check.hpp"
#include "cuda/common/stream_order.hpp"

namespace omniattn::detail::cuda {

void StreamOrder::follow(cudaStream_t stream) {
  if (used_ && stream != last_ && recorded_)
    check(cudaStreamWaitEvent(stream, event_, 0), "cudaStreamWaitEvent (buffer hand-off between streams)");
  if (event_ == nullptr) check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate");
  last_ = stream;
  used_ = pending_ = true;
}

void StreamOrder::release() noexcept {
  if (!pending_) return;
  pending_ = false;
  recorded_ = cudaEventRecord(event_, last_) == cudaSuccess;
}

}  // namespace omniattn::detail::cuda
