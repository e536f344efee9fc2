#pragma once
// What one CTA of each backward kernel does (device functions apart from the __global__ wrappers in
// bwd_kernel.cuh, so that the host emulation in tests/gpu/emulator runs the same code):
//   preprocess (bwd_preprocess.cuh) -> main: scheduler x mainloop x epilogue -> postprocess (dQ) -> d sink.
#include "cuda/bwd/bwd_epilogue.cuh"
#include "cuda/bwd/bwd_mainloop.cuh"
#include "cuda/bwd/bwd_postprocess.cuh"
#include "cuda/bwd/bwd_preprocess.cuh"
#include "cuda/bwd/bwd_timeline.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
__device__ __forceinline__ void bwd_main_cta(const BwdParams& p) {
  BwdKvWork work;
  if (!make_kv_work<Traits::kBlockM>(p, work)) return;
  if (threadIdx.x == 0) bwd_cta_started(p);
  uint8_t* smem = dynamic_smem();  // BwdTraits layout

  typename Traits::DkAcc dk;  // (kDkvKeys, kDkCols) f32 per warp, summed over every step
  typename Traits::DvAcc dv;  // (kDkvKeys, kDvCols) f32 per warp
  dk.fill(0.f);
  dv.fill(0.f);
  BwdMainloop<Traits>::run(p, work, smem, dk, dv);
  BwdEpilogue<Traits>::run(p, work, dk, dv);
  if (threadIdx.x == 0) bwd_cta_finished<Traits::kBlockM>(p, work);
}

}  // namespace omniattn::detail::cuda
