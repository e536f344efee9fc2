#pragma once
// The backward main kernel's CTA timeline (BwdParams::timeline, cta_timeline.hpp): the record's slot and the CTA's
// step count. Debug only: called when p.timeline is set, by one thread, before and after the CTA's work.
#include "cuda/bwd/bwd_sparse.cuh"
#include "cuda/common/cta_timeline.cuh"

namespace omniattn::detail::cuda {

/// The CTA's linear index in BwdKvScheduler::grid (x fastest).
__device__ __forceinline__ uint64_t bwd_timeline_slot(const BwdParams& p) {
  return blockIdx.x + static_cast<uint64_t>(p.kv_units) * (blockIdx.y + static_cast<uint64_t>(p.hkv) * blockIdx.z);
}

/// How many steps (query tiles) the CTA of `w` ran: its walk again, alone (the mainloop keeps no count).
template <int kBlockM, BwdWalkKind kKind>
__device__ __forceinline__ int bwd_timeline_steps(const BwdParams& p, const BwdKvWork& w) {
  const SequenceMask mask = bwd_mask(p, w.seq);
  BwdWalk<kBlockM, kKind> walk;
  walk.init(p, w);
  BwdStep step;
  int steps = 0;
  while (walk.next(p, w, mask, step)) ++steps;
  return steps;
}

__device__ __forceinline__ void bwd_cta_started(const BwdParams& p) {
  if (p.timeline != nullptr) cta_started(p.timeline, bwd_timeline_slot(p));
}

template <int kBlockM, BwdWalkKind kKind = BwdWalkKind::any>
__device__ __forceinline__ void bwd_cta_finished(const BwdParams& p, const BwdKvWork& w) {
  if (p.timeline != nullptr)
    cta_finished(p.timeline, bwd_timeline_slot(p), w.n, w.kv_head, bwd_timeline_steps<kBlockM, kKind>(p, w));
}

}  // namespace omniattn::detail::cuda
