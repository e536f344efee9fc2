#pragma once
// The decode epilogue of one work item: the warps that split the tile's keys merge their softmax states through
// shared memory (in `staging`: a free K/V stage), then the CTA writes either
//   the final result (the item covers its whole segment): O in the input dtype, LSE, the sink logit joining the
//   denominator; or
//   a partial (a run of a split segment): O normalized by its own sum (f32) and the run's LSE, for the merge
//   kernel (decode_merge.cuh).
// A bad page id met by any thread of the item turns every row it writes into NaN (O and LSE).
#include <cstdint>

#include "cuda/common/online_softmax.cuh"
#include "cuda/decode/decode_params.hpp"
#include "cuda/decode/decode_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct DecodeEpilogue {
  using Element = typename Traits::Element;
  using OAcc = typename Traits::OAcc;
  static constexpr int kD = Traits::kD;
  static constexpr int kStride = Traits::kMergeStride;
  static constexpr float kLog2e = 1.4426950408889634f;
  static constexpr float kLn2 = 0.69314718055994531f;

  static __device__ __forceinline__ void store(const DecodeParams& p, const DecodeSegment& seg,
                                               const DecodeItem& item, uint8_t* smem, uint8_t* staging,
                                               const OAcc& o, const OnlineSoftmax<2>& softmax, bool bad_page) {
    const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
    float* staged_o = reinterpret_cast<float*>(staging);  // (warp, 16, kStride)
    float* staged_max = staged_o + Traits::kWarps * 16 * kStride;            // (warp, 16) base-2 max, -inf: empty
    float* staged_sum = staged_max + Traits::kWarps * 16;                    // (warp, 16)
    int* bad_flag = reinterpret_cast<int*>(smem + Traits::kFlagOffset);

    // Each warp's state: O fragments, and per row its max (base 2) and sum (reduced over the quad).
    if (bad_page) *bad_flag = 1;  // reset by the CTA loop before this item; read after the barrier below
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = OAcc::row_of_slot(r, lane);
      const float sum = quad_sum(softmax.row_sum[r]);
      if ((lane & 3) == 0) {
        staged_max[warp * 16 + row] = softmax.row_max[r] == -INFINITY ? -INFINITY : softmax.row_max[r] * p.mult_log2;
        staged_sum[warp * 16 + row] = sum;
      }
#pragma unroll
      for (int n = 0; n < OAcc::kN; ++n) {
        float* dst = staged_o + (warp * 16 + row) * kStride + OAcc::col_of(n, 0, lane);
        dst[0] = o.v[0][n][2 * r];
        dst[1] = o.v[0][n][2 * r + 1];
      }
    }
    __syncthreads();
    const bool poisoned = *bad_flag != 0;

    // Row r of the CTA belongs to row warp r / 16; its key warps are kKeyWarps consecutive warps.
    constexpr int kChunks = kD / 4;  // 4 columns per unit
    for (int unit = thread; unit < Traits::kRows * kChunks; unit += Traits::kThreads) {
      const int r = unit / kChunks, c = (unit % kChunks) * 4;
      if (r >= seg.rows) continue;
      const int w0 = (r / 16) * Traits::kKeyWarps, row16 = r % 16;
      float top = -INFINITY;  // base-2 max over the key warps
#pragma unroll
      for (int w = 0; w < Traits::kKeyWarps; ++w) top = fmaxf(top, staged_max[(w0 + w) * 16 + row16]);
      float sum = 0.f, acc[4] = {0.f, 0.f, 0.f, 0.f};
      if (top != -INFINITY) {
#pragma unroll
        for (int w = 0; w < Traits::kKeyWarps; ++w) {
          const float m = staged_max[(w0 + w) * 16 + row16];
          const float scale = m == -INFINITY ? 0.f : fast_exp2(m - top);
          sum += staged_sum[(w0 + w) * 16 + row16] * scale;
          const float* src = staged_o + ((w0 + w) * 16 + row16) * kStride + c;
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[e] += src[e] * scale;
        }
      }
      const int row = seg.row0 + r, token = row / p.group, head = seg.kv_head * p.group + row % p.group;
      float factor, lse;
      if (item.partial < 0) {  // final: the sink logit joins the denominator
        const float sink = p.sink_logits ? p.sink_logits[head] * kLog2e : -INFINITY;
        const float ref = fmaxf(top, sink);
        if (ref == -INFINITY) {
          factor = 0.f;
          lse = -INFINITY;
        } else {
          const float keep = top == -INFINITY ? 0.f : fast_exp2(top - ref);
          const float denom = sum * keep + (sink == -INFINITY ? 0.f : fast_exp2(sink - ref));
          factor = keep / denom;
          lse = (ref + __log2f(denom)) * kLn2;
        }
      } else if (sum > 0.f) {
        factor = 1.f / sum;
        lse = (top + __log2f(sum)) * kLn2;
      } else {
        factor = 0.f;
        lse = -INFINITY;
      }
      if (poisoned) factor = lse = nanf("");  // a bad page id: loud, never silently wrong
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[e] *= factor;
      if (item.partial < 0) {
        Element* dst = static_cast<Element*>(p.out) + seg.batch * p.o_batch + token * p.o_token + head * p.o_head + c;
        uint32_t* dst32 = reinterpret_cast<uint32_t*>(dst);  // 4-byte aligned: rows 16-byte aligned, c % 4 == 0
        dst32[0] = pack_pair<Element>(acc[0], acc[1]);
        dst32[1] = pack_pair<Element>(acc[2], acc[3]);
        if (c == 0 && p.lse != nullptr)
          p.lse[seg.batch * p.lse_batch + head * p.lse_head + token * p.lse_token] = lse;
      } else {
        float* dst = p.partial_o + (static_cast<int64_t>(item.partial) * p.rows_per_cta + r) * p.dv + c;
#pragma unroll
        for (int e = 0; e < 4; ++e) dst[e] = acc[e];
        if (c == 0) p.partial_lse[item.partial * p.rows_per_cta + r] = lse;
      }
    }
  }
};

}  // namespace omniattn::detail::cuda
