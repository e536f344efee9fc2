#pragma once
// Backward postprocess, one CTA per (query block, query head, sequence), after the main kernel: the block's
// f32 dQ accumulator -> dQ in the input dtype, 16-byte chunks of 8 columns per thread.
#include <cstdint>

#include "cuda/bwd/bwd_convert.cuh"
#include "cuda/bwd/bwd_scheduler.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
__device__ __forceinline__ void bwd_postprocess_cta(const BwdParams& p) {
  using Element = typename Traits::Element;
  constexpr int kBlockM = Traits::kBlockM, kThreads = Traits::kThreads, kD = Traits::kD;
  constexpr int kChunksPerRow = kD / 8;

  const int m = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y), b = static_cast<int>(blockIdx.z);
  const BwdSeqInfo seq = bwd_seq(p, b);
  const int t0 = m * kBlockM;
  if (t0 >= seq.q_len) return;
  const int64_t rb = static_cast<int64_t>(seq.m_block0 + m) * p.hq + h;
  const float* acc = p.dq_accum + rb * kBlockM * kD;  // (kBlockM, kD) f32
  Element* dq = static_cast<Element*>(p.dq) + b * p.dq_batch + h * p.dq_head;

  for (int chunk = static_cast<int>(threadIdx.x); chunk < kBlockM * kChunksPerRow; chunk += kThreads) {
    const int r = chunk / kChunksPerRow, c = (chunk % kChunksPerRow) * 8;
    if (t0 + r >= seq.q_len) continue;
    const uint4 lo = *reinterpret_cast<const uint4*>(acc + r * kD + c);
    const uint4 hi = *reinterpret_cast<const uint4*>(acc + r * kD + c + 4);
    uint4 out;
    out.x = pack_pair<Element>(bits_to_float(lo.x), bits_to_float(lo.y));
    out.y = pack_pair<Element>(bits_to_float(lo.z), bits_to_float(lo.w));
    out.z = pack_pair<Element>(bits_to_float(hi.x), bits_to_float(hi.y));
    out.w = pack_pair<Element>(bits_to_float(hi.z), bits_to_float(hi.w));
    *reinterpret_cast<uint4*>(dq + (seq.q_begin + t0 + r) * p.dq_token + c) = out;
  }
}

}  // namespace omniattn::detail::cuda
