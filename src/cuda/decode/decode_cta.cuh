#pragma once
// What one decode CTA does: walk its items (decode_plan.hpp) -> per item mainloop -> epilogue (-> the merge of a
// split segment, by the CTA that writes its last partial). A device function
// apart from the __global__ wrapper (decode_kernel.cuh) so that a host emulation can run the same code.
#include "cuda/decode/decode_epilogue.cuh"
#include "cuda/decode/decode_mainloop.cuh"
#include "cuda/decode/decode_merge.cuh"

namespace omniattn::detail::cuda {

/// After writing a partial of a split segment: the CTA whose partial completes the segment merges it (no second
/// kernel, no launch, no gap). Every thread fences its partial stores before the barrier, so the arrival that one
/// thread then counts is ordered after all of them (the classic last-block reduction).
template <class Traits>
__device__ __forceinline__ void merge_if_last(const DecodeParams& p, int merge, uint8_t* smem) {
  int* last = reinterpret_cast<int*>(smem + Traits::kFlagOffset) + 1;  // the word after the bad-page flag
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const int arrived = atomicAdd(p.merge_counters + merge, 1) + 1;
    *last = arrived == p.merges[merge].partials;
  }
  __syncthreads();
  if (!*last) return;
  __threadfence();  // the other CTAs' partials, fenced before their arrivals, are visible from here
  decode_merge_cta<typename Traits::Element>(p, merge, static_cast<int>(threadIdx.x), Traits::kThreads,
                                              smem + Traits::kStageOffset);
  if (threadIdx.x == 0) p.merge_counters[merge] = 0;  // ready for the next call
}

template <class Traits>
__device__ __forceinline__ void decode_cta(const DecodeParams& p, int cta) {
  uint8_t* smem = dynamic_smem();
  int* bad_flag = reinterpret_cast<int*>(smem + Traits::kFlagOffset);
  for (int i = p.cta_items[cta]; i < p.cta_items[cta + 1]; ++i) {
    const DecodeItem item = p.items[i];
    const DecodeSegment seg = p.segments[item.segment];
    if (threadIdx.x == 0) *bad_flag = 0;
    typename Traits::OAcc o;  // (16, kD) f32 per warp
    o.fill(0.f);
    OnlineSoftmax<2> softmax;
    softmax.init();
    bool bad_page = false;
    DecodeMainloop<Traits>::run(p, seg, item, smem, o, softmax, bad_page);
    DecodeEpilogue<Traits>::store(p, seg, item, smem, o, softmax, bad_page);
    if (item.merge >= 0) merge_if_last<Traits>(p, item.merge, smem);
    __syncthreads();  // the next item overwrites Q, the stages and the flag
  }
}

}  // namespace omniattn::detail::cuda
