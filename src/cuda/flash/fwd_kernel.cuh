#pragma once
// The sm_80 forward kernel (fwd_cta.cuh: scheduler x mainloop x epilogue) and its launch. Included only by the
// per-head-dim instantiation files (fwd_instantiate_d*.cu), so each (D, Dv) compiles in its own unit.
#include "cuda/common/cuda_check.hpp"
#include "cuda/flash/fwd_cta.cuh"
#include "cuda/flash/fwd_launch.hpp"

namespace omniattn::detail::cuda {

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinCtasPerSm)
    flash_fwd_sm80_kernel(const __grid_constant__ FwdParams p) {
  flash_fwd_sm80_cta<Traits>(p);
}

template <class Traits>
void configure_fwd_kernel_once() {
  configure_kernel_once<&flash_fwd_sm80_kernel<Traits>>(Traits::kSmemBytes, /*max_shared_carveout=*/true,
                                                        "cudaFuncSetAttribute (sm80 forward kernel)");
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
  return kernel_info(&flash_fwd_sm80_kernel<Traits>, Traits::kThreads, Traits::kSmemBytes);
}

}  // namespace omniattn::detail::cuda
