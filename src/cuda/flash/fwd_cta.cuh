#pragma once
// What one CTA of the sm_80 forward does: scheduler -> mainloop -> epilogue. A device function apart from
// the __global__ wrapper (fwd_kernel.cuh) so that the host emulation (tests/gpu/emulator) runs the same code.
#include "cuda/flash/fwd_epilogue.cuh"
#include "cuda/flash/fwd_mainloop.cuh"

namespace omniattn::detail::cuda {

using FwdScheduler = LongestFirstScheduler;

/// Mainloop and epilogue of one tile over `tiles` (KvRange, or SparseKvWalk for block-sparse calls).
template <class Traits, class Tiles>
__device__ __forceinline__ void flash_fwd_sm80_tile(const FwdParams& p, const CtaWork& work, const Tiles& tiles) {
  uint8_t* smem = dynamic_smem();  // Q | K | V tiles (FwdTraits offsets), then O staging in Q's place

  typename Traits::OAcc o;  // (kWarpRows, kDv) f32 per warp
  o.fill(0.f);
  OnlineSoftmax<Traits::kRowSlots> softmax;
  softmax.init();
  FwdMainloop<Traits>::run(p, work, tiles, smem, o, softmax);
  FwdEpilogue<Traits>::store(p, work, smem, o, softmax);
}

/// One CTA: its tile's dense KV range, or (kSparse, block-sparse calls) the listed tiles. Two kernels rather than a
/// runtime branch in one: with both loops in one kernel ptxas spilled in the dense loop too (D = 64: 0 -> 15 local
/// loads + 14 stores per KV step; fwd_kernel.cuh picks the kernel).
template <class Traits, bool kSparse>
__device__ __forceinline__ void flash_fwd_sm80_cta(const FwdParams& p) {
  CtaWork work;
  if (!make_cta_work<Traits::kBlockM, Traits::kBlockN>(p, FwdScheduler::tile(p), work)) return;
  if constexpr (kSparse)
    flash_fwd_sm80_tile<Traits>(p, work, make_cta_sparse_walk<Traits::kBlockN>(p, work));
  else
    flash_fwd_sm80_tile<Traits>(p, work, work.kv);
}

}  // namespace omniattn::detail::cuda
