#pragma once
// The sm_80 backward kernels (bwd_cta.cuh) and their launch. Included only by the per-head-dim instantiation
// files (bwd_instantiate_d*.cu), so each (D, Dv) compiles in its own unit.

#include "cuda/bwd/bwd_cta.cuh"
#include "cuda/bwd/bwd_launch.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/kernel_setup.hpp"

namespace omniattn::detail::cuda {

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads) bwd_preprocess_sm80_kernel(const __grid_constant__ BwdParams p) {
  bwd_preprocess_cta<Traits>(p);
}

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinCtasPerSm)
    bwd_main_sm80_kernel(const __grid_constant__ BwdParams p) {
  bwd_main_cta<Traits>(p);
}

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads) bwd_postprocess_sm80_kernel(const __grid_constant__ BwdParams p) {
  bwd_postprocess_cta<Traits>(p);
}

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads) bwd_dsink_sm80_kernel(const __grid_constant__ BwdParams p) {
  bwd_dsink_cta<Traits>(p);
}

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads) bwd_split_store_sm80_kernel(const __grid_constant__ BwdParams p) {
  bwd_split_store_cta<Traits>(p);
}

template <class Traits>
void configure_bwd_kernel_once() {
  configure_kernel_once<&bwd_main_sm80_kernel<Traits>>(Traits::kSmemBytes, /*max_shared_carveout=*/true,
                                                       "cudaFuncSetAttribute (sm80 backward kernel)");
}

template <class Element, int kD, int kDv>
void launch_bwd_preprocess(const BwdParams& p, cudaStream_t stream) {
  using Traits = BwdTraits<Element, kD, kDv>;
  if (p.m_blocks == 0) return;
  bwd_preprocess_sm80_kernel<Traits><<<BwdRowScheduler::grid(p), Traits::kThreads, kPreSmemBytes<Traits>, stream>>>(p);
  check_launch("launch of the backward preprocess kernel");
}

template <class Element, int kD, int kDv>
void launch_bwd_postprocess(const BwdParams& p, cudaStream_t stream) {
  using Traits = BwdTraits<Element, kD, kDv>;
  if (p.m_blocks > 0) {
    bwd_postprocess_sm80_kernel<Traits><<<BwdRowScheduler::grid(p), Traits::kThreads, 0, stream>>>(p);
    check_launch("launch of the backward postprocess kernel");
  }
  if (p.split_tile_count > 0) {
    bwd_split_store_sm80_kernel<Traits><<<BwdSplitStoreScheduler::grid(p), Traits::kThreads, 0, stream>>>(p);
    check_launch("launch of the backward split-store kernel");
  }
  if (p.dsink != nullptr) {
    bwd_dsink_sm80_kernel<Traits><<<1, Traits::kThreads, 0, stream>>>(p);
    check_launch("launch of the sink-logit gradient kernel");
  }
}

template <class Element, int kD, int kDv>
void launch_bwd_sm80(const BwdParams& p, cudaStream_t stream) {
  using Traits = BwdTraits<Element, kD, kDv>;
  configure_bwd_kernel_once<Traits>();
  launch_bwd_preprocess<Element, kD, kDv>(p, stream);
  if (p.n_blocks > 0) {
    bwd_main_sm80_kernel<Traits><<<BwdKvScheduler::grid(p), Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
    check_launch("launch of the sm80 backward kernel");
  }
  launch_bwd_postprocess<Element, kD, kDv>(p, stream);
}

// One (D, Dv) per translation unit: the sm_80 kernels and the row kernels the sm_90a main kernel shares.
#define OMNIATTN_INSTANTIATE_BWD_SM80(E, D, DV)                                     \
  template void launch_bwd_sm80<E, D, DV>(const BwdParams&, cudaStream_t);         \
  template void launch_bwd_preprocess<E, D, DV>(const BwdParams&, cudaStream_t);   \
  template void launch_bwd_postprocess<E, D, DV>(const BwdParams&, cudaStream_t);

}  // namespace omniattn::detail::cuda
