#pragma once
// A small per-device buffer for per-call metadata (per-sequence offsets and lengths, tensor maps), uploaded through
// pinned staging. The caller holds lock() from the upload until its kernel is enqueued (DeviceWorkspace).
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/common/device_workspace.hpp"
#include "cuda/common/pinned_upload.hpp"

namespace omniattn::detail::cuda {

class DeviceScratch : public DeviceWorkspace {
 public:
  DeviceScratch() { initial_bytes_ = 4096; }
  static DeviceScratch& of_device(int device) { return workspace_of_device<DeviceScratch>(device); }
  /// Copies `bytes` from host memory into the buffer (stream-ordered) and returns its device address.
  /// The caller holds lock() and the device is current.
  void* upload(const void* host, std::size_t bytes, cudaStream_t stream) {
    void* data = acquire(bytes, stream);
    uploader_.upload(data, host, bytes, stream);
    return data;
  }

 private:
  PinnedUploader uploader_;
};

}  // namespace omniattn::detail::cuda
