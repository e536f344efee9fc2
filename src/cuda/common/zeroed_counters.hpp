#pragma once
// Device int32 counters that are zero before every kernel that uses them and that the kernel leaves zero again
// (self-resetting tile tickets of persistent schedules): zeroed once when allocated, never per call. Lock and
// stream order as DeviceWorkspace says.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/common/device_workspace.hpp"

namespace omniattn::detail::cuda {

class ZeroedCounters : public DeviceWorkspace {
 public:
  ZeroedCounters() { initial_bytes_ = 256; }
  static ZeroedCounters& of_device(int device) { return workspace_of_device<ZeroedCounters>(device); }
  /// `count` zero counters for work enqueued on `stream` from now on, which must leave them zero (lock held,
  /// device current).
  int32_t* get(std::size_t count, cudaStream_t stream);

 private:
  std::size_t zeroed_bytes_ = 0;  // bytes known to be zero (the kernels keep them so)
};

}  // namespace omniattn::detail::cuda
