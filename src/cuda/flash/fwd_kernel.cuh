#pragma once
// The sm_80 forward kernel (fwd_cta.cuh: scheduler x mainloop x epilogue) and its launch. Included only by the
// per-head-dim instantiation files (fwd_instantiate_d*.cu), so each (D, Dv) compiles in its own unit.
#include "cuda/common/cuda_check.hpp"
#include "cuda/flash/fwd_cta.cuh"
#include "cuda/flash/fwd_launch.hpp"

namespace omniattn::detail::cuda {

/// kSparse: the block-sparse variant (FwdParams::is_sparse()); the dense kernel holds no sparse code.
template <class Traits, bool kSparse>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinCtasPerSm)
    flash_fwd_sm80_kernel(const __grid_constant__ FwdParams p) {
  flash_fwd_sm80_cta<Traits, kSparse>(p);
}

template <class Traits, bool kSparse>
void configure_fwd_kernel_once() {
  configure_kernel_once<&flash_fwd_sm80_kernel<Traits, kSparse>>(Traits::kSmemBytes, /*max_shared_carveout=*/true,
                                                                 "cudaFuncSetAttribute (sm80 forward kernel)");
}

template <class Element, int kD, int kDv>
void launch_fwd_sm80(const FwdParams& p, cudaStream_t stream) {
  using Traits = FwdTraits<Element, kD, kDv>;
  if (p.is_sparse()) {
    configure_fwd_kernel_once<Traits, true>();
    flash_fwd_sm80_kernel<Traits, true><<<FwdScheduler::grid(p), Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
  } else {
    configure_fwd_kernel_once<Traits, false>();
    flash_fwd_sm80_kernel<Traits, false><<<FwdScheduler::grid(p), Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
  }
  check_launch("launch of the sm80 forward kernel");
}

/// What the device makes of the dense kernel (the block-sparse one has the same shared memory and threads).
template <class Element, int kD, int kDv>
FwdKernelInfo fwd_sm80_kernel_info() {
  using Traits = FwdTraits<Element, kD, kDv>;
  configure_fwd_kernel_once<Traits, false>();
  return kernel_info(&flash_fwd_sm80_kernel<Traits, false>, Traits::kThreads, Traits::kSmemBytes);
}

}  // namespace omniattn::detail::cuda
