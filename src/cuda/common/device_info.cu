#include "cuda/common/device_info.hpp"

#include <cuda_runtime_api.h>

namespace omniattn::detail::cuda {

const std::vector<int>& device_majors() {
  static const std::vector<int> majors = [] {
    std::vector<int> m;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();  // no driver / no device: not an error of any later call
      return m;
    }
    for (int d = 0; d < count; ++d) {
      int major = 0;
      if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d) != cudaSuccess) {
        cudaGetLastError();
        major = 0;
      }
      m.push_back(major);
    }
    return m;
  }();
  return majors;
}

int device_major(int device) {
  const auto& majors = device_majors();
  return device >= 0 && device < static_cast<int>(majors.size()) ? majors[device] : 0;
}

}  // namespace omniattn::detail::cuda
