#pragma once
// The sm_80 forward kernel (fwd_cta.cuh: scheduler x mainloop x epilogue) and its launch. Included only by the
// per-head-dim instantiation files (fwd_instantiate_d*.cu), so each (D, Dv) compiles in its own unit.
#include <atomic>

#include "cuda/common/cuda_check.hpp"
#include "cuda/flash/fwd_cta.cuh"
#include "cuda/flash/fwd_launch.hpp"

namespace omniattn::detail::cuda {

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinCtasPerSm)
    flash_fwd_sm80_kernel(const __grid_constant__ FwdParams p) {
  flash_fwd_sm80_cta<Traits>(p);
}

// More than 48 KB of dynamic shared memory must be opted into, once per device and kernel.
template <class Traits>
void configure_fwd_kernel_once() {
  static std::atomic<uint64_t> configured_devices{0};
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (bit != 0 && (configured_devices.load(std::memory_order_acquire) & bit)) return;
  const auto kernel = &flash_fwd_sm80_kernel<Traits>;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Traits::kSmemBytes),
        "cudaFuncSetAttribute (dynamic shared memory of the sm80 forward kernel)");
  // All of the unified L1/shared storage as shared memory, so kMinCtasPerSm CTAs fit (cp.async.cg bypasses
  // L1 anyway; L1 keeps only a few spilled registers).
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared),
        "cudaFuncSetAttribute (shared memory carveout of the sm80 forward kernel)");
  configured_devices.fetch_or(bit, std::memory_order_acq_rel);
}

template <class Element, int kD, int kDv>
void launch_fwd_sm80(const FwdParams& p, cudaStream_t stream) {
  using Traits = FwdTraits<Element, kD, kDv>;
  configure_fwd_kernel_once<Traits>();
  flash_fwd_sm80_kernel<Traits><<<FwdScheduler::grid(p), Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
  check_launch("launch of the sm80 forward kernel");
}

template <class Element, int kD, int kDv>
FwdKernelInfo fwd_sm80_kernel_info() {
  using Traits = FwdTraits<Element, kD, kDv>;
  configure_fwd_kernel_once<Traits>();
  const auto kernel = &flash_fwd_sm80_kernel<Traits>;
  FwdKernelInfo info;
  cudaFuncAttributes attributes{};
  check(cudaFuncGetAttributes(&attributes, kernel), "cudaFuncGetAttributes");
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&info.ctas_per_sm, kernel, Traits::kThreads, Traits::kSmemBytes),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  info.registers = attributes.numRegs;
  info.local_bytes = static_cast<int>(attributes.localSizeBytes);
  info.smem_bytes = Traits::kSmemBytes;
  info.threads = Traits::kThreads;
  return info;
}

}  // namespace omniattn::detail::cuda
