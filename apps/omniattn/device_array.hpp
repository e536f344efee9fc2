#pragma once
// A tensor on the device the command runs on: a host copy for the CPU, device memory for CUDA.
// All CUDA runtime calls of the CLI are here (and in info), behind OMNIATTN_WITH_CUDA.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "host_array.hpp"

namespace omniattn::cli {

class DeviceArray {
 public:
  DeviceArray() = default;
  /// Copies `host` to `device`.
  DeviceArray(const HostArray& host, Device device);
  DeviceArray(DeviceArray&& o) noexcept { *this = std::move(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray();

  TensorView view() const;
  /// Copies the data back to the host.
  HostArray download() const;
  const std::vector<int64_t>& shape() const { return shape_; }

 private:
  Device device_ = Device::cpu();
  DType dtype_ = DType::f32;
  std::vector<int64_t> shape_;
  HostArray host_;              // the data when the device is the CPU
  void* device_ptr_ = nullptr;  // the data on a CUDA device
};

/// Waits until the device has finished all queued work (no-op on the CPU).
void synchronize(Device device);

/// Parses "cpu", "cuda", "cuda:N"; throws omniattn::Error on anything else or a device not present.
Device parse_device(const std::string& name);

/// Number of CUDA devices (0 without CUDA or without a GPU).
int cuda_device_count();

/// Name of CUDA device `index` ("NVIDIA H100 80GB HBM3"), its compute capability and memory.
struct CudaDeviceInfo {
  std::string name;
  int major = 0, minor = 0, sm_count = 0;
  double memory_gib = 0;
};
CudaDeviceInfo cuda_device_info(int index);

}  // namespace omniattn::cli
