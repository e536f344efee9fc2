#pragma once
// Backward postprocess, one CTA per (query block, query head, sequence), after the main kernel: the block's
// f32 dQ accumulator -> dQ in the input dtype, 16-byte chunks of 8 columns per thread. And the split tiles' dK / dV
// (bwd_split_plan.hpp).
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
    float4 lo = *reinterpret_cast<const float4*>(acc + r * kD + c);
    float4 hi = *reinterpret_cast<const float4*>(acc + r * kD + c + 4);
    for (int k = 1; k < p.dq_partials; ++k) {  // the other accumulators, in order (deterministic)
      const float4 a = *reinterpret_cast<const float4*>(acc + k * p.dq_partial_floats + r * kD + c);
      const float4 b = *reinterpret_cast<const float4*>(acc + k * p.dq_partial_floats + r * kD + c + 4);
      lo.x += a.x, lo.y += a.y, lo.z += a.z, lo.w += a.w;
      hi.x += b.x, hi.y += b.y, hi.z += b.z, hi.w += b.w;
    }
    uint4 out;
    out.x = pack_pair<Element>(lo.x, lo.y);
    out.y = pack_pair<Element>(lo.z, lo.w);
    out.z = pack_pair<Element>(hi.x, hi.y);
    out.w = pack_pair<Element>(hi.z, hi.w);
    *reinterpret_cast<uint4*>(dq + (seq.q_begin + t0 + r) * p.dq_token + c) = out;
  }
}

/// After the main kernel, one CTA per (split tile, KV head, sequence) (BwdParams::split_tiles): the sum of the
/// tile's runs (f32 slots of dkv_partial, added in run order) -> dK and dV in the input dtype, on the tile's stored
/// key rows (the rows a whole tile's epilogue writes). 4 columns per thread and chunk.
struct BwdSplitStoreScheduler {
  static dim3 grid(const BwdParams& p) {
    return dim3(static_cast<unsigned>(p.split_tile_count), static_cast<unsigned>(p.hkv), static_cast<unsigned>(p.batch));
  }
};

template <class Traits>
__device__ __forceinline__ void bwd_split_store_cta(const BwdParams& p) {
  using Element = typename Traits::Element;
  constexpr int kD = Traits::kD, kRow = Traits::kD + Traits::kDv, kChunksPerRow = kRow / 4;
  static_assert(kD % 4 == 0 && kRow % 4 == 0, "4-column chunks stay in dK or in dV");
  const BwdSplitTile tile = p.split_tiles[blockIdx.x];
  const int h = static_cast<int>(blockIdx.y), b = static_cast<int>(blockIdx.z);
  const BwdSeqInfo seq = bwd_seq(p, b);
  const int j0 = tile.tile * p.tile_keys;
  if (j0 >= seq.k_stored) return;  // the runs' CTAs returned at once too (make_kv_work)
  const int valid = min(seq.k_stored - j0, p.tile_keys);
  const float* first = bwd_dkv_slot(p, tile.slot0, b, h, kRow);
  const int64_t slot_floats = bwd_dkv_slot(p, tile.slot0 + 1, b, h, kRow) - first;  // from one run's slot to the next
  const int64_t token = seq.k_begin + j0;
  Element* dk = static_cast<Element*>(p.dk) + b * p.dk_batch + token * p.dk_token + h * p.dk_head;
  Element* dv = static_cast<Element*>(p.dv) + b * p.dv_batch + token * p.dv_token + h * p.dv_head;
  for (int chunk = static_cast<int>(threadIdx.x); chunk < valid * kChunksPerRow; chunk += Traits::kThreads) {
    const int r = chunk / kChunksPerRow, c = (chunk % kChunksPerRow) * 4;
    float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int run = 0; run < tile.runs; ++run) {
      const float4 v = *reinterpret_cast<const float4*>(first + run * slot_floats + r * kRow + c);
      sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
    }
    uint2 out;
    out.x = pack_pair<Element>(sum.x, sum.y);
    out.y = pack_pair<Element>(sum.z, sum.w);
    Element* to = c < kD ? dk + r * p.dk_token + c : dv + r * p.dv_token + (c - kD);
    *reinterpret_cast<uint2*>(to) = out;
  }
}

}  // namespace omniattn::detail::cuda
