#pragma once
// A kernel's CTA timeline, for finding what bounds a launch (which CTAs run last, how long a step takes, how busy the
// SMs stay): one record per CTA, written by one of its threads, read back and dumped by the host. Debug only: the
// backward records when OMNIATTN_BWD_TIMELINE names a file (bwd_enqueue.cu); bench/gpu/cta_timeline.py sums it up.
// Plain C++ (the records are shared by the kernels, the host dump and the host emulation).
#include <cstdint>

namespace omniattn::detail::cuda {

struct CtaTimelineRecord {  // 32 bytes
  uint64_t start_ns = 0, end_ns = 0;  // %globaltimer at the CTA's first and last recorded moment
  uint32_t sm = 0;                    // %smid
  int32_t tile = -1, head = -1;       // the CTA's work (kernel-defined: the backward's KV tile and KV head)
  int32_t steps = -1;                 // work items it ran (the backward: query tiles)
};

}  // namespace omniattn::detail::cuda
