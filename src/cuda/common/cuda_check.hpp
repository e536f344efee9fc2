#pragma once
// Host-side CUDA runtime helpers: every failing call becomes omniattn::Error("cuda", ...), and a guard
// that runs a scope on a given device and restores the caller's device afterwards.
#include <cuda_runtime_api.h>

#include <string>

#include "omniattn/error.hpp"

namespace omniattn::detail::cuda {

/// Throws omniattn::Error("cuda", "success of <what>", <CUDA's error string>) when `status` is not success.
inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear the sticky-free error state so that later calls are not blamed for this one
  throw Error("cuda", std::string("success of ") + what, cudaGetErrorString(status));
}

/// After a kernel launch: a bad launch configuration surfaces here (faults inside the kernel surface at the
/// next synchronizing call, as with any asynchronous CUDA work).
inline void check_launch(const char* kernel_name) { check(cudaGetLastError(), kernel_name); }

/// Makes `device` current for the lifetime of the guard.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace omniattn::detail::cuda
