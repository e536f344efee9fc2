#pragma once
// Backward preprocess, one CTA per (query block, query head, sequence), before the main kernel:
//   D_r = rowsum(dO * O) in f32 and LSE * log2(e) for each row of the block (padded rows: D = 0, LSE = +inf,
//   so that P = exp2(x - LSE) = 0 there; an empty row's LSE -inf also becomes +inf);
//   this block's share of the sink-logit gradient, sum_r exp(sink - LSE_r) D_r;
//   the block's dQ accumulator and (deterministic mode) its semaphore set to 0.
#include <cmath>
#include <cstdint>

#include "cuda/bwd/bwd_convert.cuh"
#include "cuda/bwd/bwd_scheduler.cuh"

namespace omniattn::detail::cuda {

/// Dynamic shared memory of the preprocess kernel: one float per warp.
template <class Traits>
inline constexpr int kPreSmemBytes = 4 * Traits::kWarps;

template <class Traits>
__device__ __forceinline__ void bwd_preprocess_cta(const BwdParams& p) {
  using Element = typename Traits::Element;
  constexpr int kBlockM = Traits::kBlockM, kWarps = Traits::kWarps, kThreads = Traits::kThreads;
  constexpr int kD = Traits::kD, kDv = Traits::kDv;
  constexpr float kLog2e = 1.4426950408889634f;
  float* sink_share = reinterpret_cast<float*>(dynamic_smem());  // (kWarps) f32: launched with kPreSmemBytes

  const int m = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y), b = static_cast<int>(blockIdx.z);
  const BwdSeqInfo seq = bwd_seq(p, b);
  const int t0 = m * kBlockM;
  if (t0 >= seq.q_len) return;
  const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
  const int64_t rb = static_cast<int64_t>(seq.m_block0 + m) * p.hq + h;  // row block (bwd_params.hpp)
  const float sink = p.sink_logits ? p.sink_logits[h] : 0.f;

  // One warp per row; lanes take pairs of columns (coalesced 128-byte reads).
  float sink_sum = 0.f;
  for (int r = warp; r < kBlockM; r += kWarps) {
    const int t = t0 + r;
    const bool valid = t < seq.q_len;
    float dot = 0.f;
    if (valid) {
      const int64_t token = seq.q_begin + t;
      const auto* o = reinterpret_cast<const uint32_t*>(static_cast<const Element*>(p.out) + b * p.o_batch +
                                                        token * p.o_token + h * p.o_head);
      const auto* d_o = reinterpret_cast<const uint32_t*>(static_cast<const Element*>(p.dout) + b * p.do_batch +
                                                          token * p.do_token + h * p.do_head);
#pragma unroll
      for (int c = lane; c < kDv / 2; c += 32) {
        float o0, o1, g0, g1;
        unpack_pair<Element>(o[c], o0, o1);
        unpack_pair<Element>(d_o[c], g0, g1);
        dot = fmaf(o0, g0, fmaf(o1, g1, dot));
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    if (lane == 0) {
      float lse = valid ? p.lse[b * p.lse_batch + h * p.lse_head + (seq.q_begin + t) * p.lse_token] : INFINITY;
      if (lse == -INFINITY) lse = INFINITY;  // no visible key: P = 0
      p.lse_log2[rb * kBlockM + r] = lse * kLog2e;
      p.dsum[rb * kBlockM + r] = dot;
      if (p.sink_logits && valid && lse != INFINITY) sink_sum += std::exp(sink - lse) * dot;
    }
  }
  if (p.sink_logits) {
    if (lane == 0) sink_share[warp] = sink_sum;
    __syncthreads();
    if (thread == 0) {
      float total = 0.f;
      for (int w = 0; w < kWarps; ++w) total += sink_share[w];  // fixed order: deterministic
      p.dsink_part[rb] = total;
    }
  }

  // Zero this block's dQ accumulators: (kBlockM, kD) f32 each, 16 bytes per store.
  constexpr int kChunks = kBlockM * kD / 4;
  for (int k = 0; k < p.dq_partials; ++k) {
    uint4* acc = reinterpret_cast<uint4*>(p.dq_accum + k * p.dq_partial_floats + rb * kBlockM * kD);
    for (int i = thread; i < kChunks; i += kThreads) acc[i] = uint4{0u, 0u, 0u, 0u};
  }
  if (p.deterministic && thread == 0) p.semaphore[rb] = 0;
}

/// Sink-logit gradient: d sink_h = -sum over every row block of head h of its share, in a fixed order.
template <class Traits>
__device__ __forceinline__ void bwd_dsink_cta(const BwdParams& p) {
  for (int h = static_cast<int>(threadIdx.x); h < p.hq; h += Traits::kThreads) {
    float total = 0.f;
    for (int blk = 0; blk < p.total_m_blocks; ++blk) total += p.dsink_part[static_cast<int64_t>(blk) * p.hq + h];
    p.dsink[h] = -total;
  }
}

}  // namespace omniattn::detail::cuda
