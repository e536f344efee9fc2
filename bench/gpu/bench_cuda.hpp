#pragma once
// What every GPU benchmark program needs of CUDA: error checks, an owning device buffer, event-timed medians.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace omniattn::bench {

using CudaCheck = void (*)(cudaError_t, const char*);

/// Exits with status 2 on a CUDA error (programs that cannot go on).
inline void cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  std::exit(2);
}

/// Throws std::runtime_error on a CUDA error (programs that turn a failed case into a skipped row).
inline void cuda_throw(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

/// cudaMalloc'd bytes (at least 16), freed on destruction; allocation errors go to kCheck.
template <CudaCheck kCheck = cuda_ok>
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) { kCheck(cudaMalloc(&ptr, std::max<size_t>(bytes, 16)), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

/// Median milliseconds of call(set) timed with events, set alternating 0, 1, after `warmup` untimed calls.
template <class Call>
double median_ms(const Call& call, int warmup, int reps, CudaCheck check = cuda_ok) {
  for (int i = 0; i < warmup; ++i) call(i % 2);
  check(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<float> times;
  for (int r = 0; r < reps; ++r) {
    check(cudaEventRecord(start), "cudaEventRecord");
    call(r % 2);
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace omniattn::bench
