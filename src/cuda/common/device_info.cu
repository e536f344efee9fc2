#include "cuda/common/device_info.hpp"

#include <cuda_runtime_api.h>

namespace omniattn::detail::cuda {
namespace {

// `attribute` of every device (0 where the query failed); empty without a driver or a device.
std::vector<int> query_every_device(cudaDeviceAttr attribute) {
  std::vector<int> values;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver / no device: not an error of any later call
    return values;
  }
  for (int d = 0; d < count; ++d) {
    int value = 0;
    if (cudaDeviceGetAttribute(&value, attribute, d) != cudaSuccess) {
      cudaGetLastError();
      value = 0;
    }
    values.push_back(value);
  }
  return values;
}

int at(const std::vector<int>& values, int device) {
  return device >= 0 && device < static_cast<int>(values.size()) ? values[device] : 0;
}

}  // namespace

const std::vector<int>& device_majors() {
  static const std::vector<int> majors = query_every_device(cudaDevAttrComputeCapabilityMajor);
  return majors;
}

int device_major(int device) { return at(device_majors(), device); }

int device_multiprocessors(int device) {
  static const std::vector<int> counts = query_every_device(cudaDevAttrMultiProcessorCount);
  return at(counts, device);
}

int device_max_smem_optin(int device) {
  static const std::vector<int> limits = query_every_device(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  return at(limits, device);
}

}  // namespace omniattn::detail::cuda
