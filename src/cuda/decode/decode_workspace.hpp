#pragma once
// The decode's per-device workspace: one call's plan and partial results, plus the merge counters (a separate
// allocation that keeps its zeros across calls). Lock and acquire as DeviceWorkspace says.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/common/device_workspace.hpp"
#include "cuda/common/pinned_upload.hpp"

namespace omniattn::detail::cuda {

class DecodeWorkspace : public DeviceWorkspace {
 public:
  static DecodeWorkspace& of_device(int device) { return workspace_of_device<DecodeWorkspace>(device); }
  /// `count` zeroed int32 merge counters, valid for work enqueued on `stream` after acquire() (lock held). The
  /// kernels leave them zero again, so they are zeroed only when the array grows.
  int32_t* merge_counters(std::size_t count, cudaStream_t stream);
  /// Copies host bytes into the buffer at `offset` on `stream`, through pinned staging (lock held, after acquire).
  void upload(std::size_t offset, const void* host, std::size_t bytes, cudaStream_t stream) {
    uploader_.upload(static_cast<unsigned char*>(data()) + offset, host, bytes, stream);
  }

 private:
  int32_t* counters_ = nullptr;  // never freed, as the workspace
  std::size_t counter_capacity_ = 0;
  PinnedUploader uploader_;
};

}  // namespace omniattn::detail::cuda
