#pragma once
// Host-side kernel setup shared by every launch: the dynamic shared-memory opt-in (more than 48 KB must be
// requested once per device and kernel) and what the current device makes of a kernel (occupancy, registers).
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>

#include "cuda/common/cuda_check.hpp"

namespace omniattn::detail::cuda {

/// What the current device makes of one kernel (for benchmarks and diagnostics).
struct KernelInfo {
  int ctas_per_sm = 0;  // resident CTAs per SM (cudaOccupancyMaxActiveBlocksPerMultiprocessor)
  int registers = 0;    // per thread
  int local_bytes = 0;  // spill / stack bytes per thread
  int smem_bytes = 0;   // dynamic shared memory per CTA
  int threads = 0;      // per CTA
};

/// Opts `kKernel` into `smem_bytes` of dynamic shared memory on the current device, once per device (a static
/// per kernel: kKernel is a template argument because kernels of one signature share a pointer type).
/// `max_shared_carveout`: all of the unified L1/shared storage as shared memory, so that several CTAs fit.
template <auto kKernel>
void configure_kernel_once(int smem_bytes, bool max_shared_carveout, const char* what) {
  static std::atomic<uint64_t> configured_devices{0};
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (bit != 0 && (configured_devices.load(std::memory_order_acquire) & bit)) return;
  check(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), what);
  if (max_shared_carveout)
    check(cudaFuncSetAttribute(kKernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared),
          what);
  configured_devices.fetch_or(bit, std::memory_order_acq_rel);
}

/// Occupancy and resources of `kernel` launched with `threads` threads and `smem_bytes` of shared memory.
template <class Kernel>
KernelInfo kernel_info(Kernel kernel, int threads, int smem_bytes) {
  KernelInfo info;
  cudaFuncAttributes attributes{};
  check(cudaFuncGetAttributes(&attributes, kernel), "cudaFuncGetAttributes");
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&info.ctas_per_sm, kernel, threads, smem_bytes),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  info.registers = attributes.numRegs;
  info.local_bytes = static_cast<int>(attributes.localSizeBytes);
  info.smem_bytes = smem_bytes;
  info.threads = threads;
  return info;
}

}  // namespace omniattn::detail::cuda
