#pragma once
// What one decode CTA does: walk its items (decode_plan.hpp) -> per item mainloop -> epilogue. A device function
// apart from the __global__ wrapper (decode_kernel.cuh) so that a host emulation can run the same code.
#include "cuda/decode/decode_epilogue.cuh"
#include "cuda/decode/decode_mainloop.cuh"

namespace omniattn::detail::cuda {

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
    __syncthreads();  // the next item overwrites Q, the stages and the flag
  }
}

/// Merge of the partials of one split segment (one CTA per DecodeMerge): for each of its rows,
///   top = max(lse_p, sink), O = sum_p exp(lse_p - top) O_p / (sum_p exp(lse_p - top) + exp(sink - top)),
///   LSE = top + log(denominator); a NaN partial (bad page id) makes the row NaN.
template <class Element>
__device__ __forceinline__ void decode_merge_cta(const DecodeParams& p, int merge_index, int thread, int threads) {
  const DecodeMerge m = p.merges[merge_index];
  const DecodeSegment seg = p.segments[m.segment];
  const int chunks = p.dv / 4;
  for (int unit = thread; unit < seg.rows * chunks; unit += threads) {
    const int r = unit / chunks, c = (unit % chunks) * 4;
    const int row = seg.row0 + r, token = row / p.group, head = seg.kv_head * p.group + row % p.group;
    const float sink = p.sink_logits ? p.sink_logits[head] : -INFINITY;
    float top = sink;
    bool nan = false;
    for (int s = 0; s < m.partials; ++s) {
      const float l = p.partial_lse[(m.first_partial + s) * p.rows_per_cta + r];
      nan = nan || l != l;
      top = fmaxf(top, l);
    }
    float acc[4] = {0.f, 0.f, 0.f, 0.f}, lse = -INFINITY;
    if (nan) {
      lse = nanf("");
      for (float& a : acc) a = lse;
    } else if (top != -INFINITY) {
      float denom = sink == -INFINITY ? 0.f : expf(sink - top);
      for (int s = 0; s < m.partials; ++s) {
        const int slot = m.first_partial + s;
        const float l = p.partial_lse[slot * p.rows_per_cta + r];
        if (l == -INFINITY) continue;
        const float w = expf(l - top);
        denom += w;
        const float* src = p.partial_o + (static_cast<int64_t>(slot) * p.rows_per_cta + r) * p.dv + c;
        for (int e = 0; e < 4; ++e) acc[e] += w * src[e];
      }
      for (float& a : acc) a /= denom;
      lse = top + logf(denom);
    }
    Element* dst = static_cast<Element*>(p.out) + seg.batch * p.o_batch + token * p.o_token + head * p.o_head + c;
    uint32_t* dst32 = reinterpret_cast<uint32_t*>(dst);
    dst32[0] = pack_pair<Element>(acc[0], acc[1]);
    dst32[1] = pack_pair<Element>(acc[2], acc[3]);
    if (c == 0 && p.lse != nullptr) p.lse[seg.batch * p.lse_batch + head * p.lse_head + token * p.lse_token] = lse;
  }
}

}  // namespace omniattn::detail::cuda
