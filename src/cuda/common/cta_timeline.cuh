#pragma once
// Device side of cta_timeline.hpp: the clock and SM id the records hold (zeros under the host emulation).
#include "cuda/common/cta_timeline.hpp"
#include "cuda/common/ptx.cuh"  // CUDA built-ins, or their host emulation

namespace omniattn::detail::cuda {

__device__ __forceinline__ uint64_t global_time_ns() {
#if defined(OMNIATTN_CUDA_EMULATION)
  return 0;
#else
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#endif
}

__device__ __forceinline__ uint32_t sm_id() {
#if defined(OMNIATTN_CUDA_EMULATION)
  return 0;
#else
  uint32_t id;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
  return id;
#endif
}

/// A CTA's record in two writes by one thread, so that no register holds the start time across the kernel's work:
/// cta_started at the start, cta_finished at the end (slot: the CTA's linear index in the grid).
__device__ __forceinline__ void cta_started(CtaTimelineRecord* timeline, uint64_t slot) {
  timeline[slot].start_ns = global_time_ns();
}
__device__ __forceinline__ void cta_finished(CtaTimelineRecord* timeline, uint64_t slot, int tile, int head,
                                             int steps) {
  CtaTimelineRecord& r = timeline[slot];
  r.end_ns = global_time_ns();
  r.sm = sm_id();
  r.tile = tile;
  r.head = head;
  r.steps = steps;
}

}  // namespace omniattn::detail::cuda
