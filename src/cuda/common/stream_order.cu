#include "cuda/common/cuda_check.hpp"
#include "cuda/common/stream_order.hpp"

namespace omniattn::detail::cuda {

void StreamOrder::follow(cudaStream_t stream) {
  if (used_ && stream != last_) {
    if (event_ == nullptr) check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventRecord(event_, last_), "cudaEventRecord (buffer hand-off between streams)");
    check(cudaStreamWaitEvent(stream, event_, 0), "cudaStreamWaitEvent (buffer hand-off between streams)");
  }
  last_ = stream;
  used_ = true;
}

}  // namespace omniattn::detail::cuda
