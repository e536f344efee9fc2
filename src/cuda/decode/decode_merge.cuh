#pragma once
// The merge of a split segment's partial results (stream-K / split-KV), run inside the decode kernel by the CTA
// that writes the segment's last partial (decode_cta.cuh).
#include <cstdint>

#include "cuda/common/ptx.cuh"
#include "cuda/decode/decode_params.hpp"
#include "cuda/decode/decode_traits.cuh"

namespace omniattn::detail::cuda {

/// Merge of the partials of one split segment, by one CTA: for each of its rows,
///   top = max(lse_p, sink), O = sum_p exp(lse_p - top) O_p / (sum_p exp(lse_p - top) + exp(sink - top)),
///   LSE = top + log(denominator); a NaN partial (bad page id) makes the row NaN.
/// Two phases so that no thread walks a chain of dependent loads: each warp reduces the LSEs of its rows with its
/// lanes spread over the partials (top, 1 / denominator into shared memory), then every thread sums 4 columns of
/// one row over the partials with independent, unrolled float4 loads.
/// The partials were written by other CTAs of the same kernel: they are read with ld.global.cg (L2, never a stale
/// L1 line). `scratch`: kDecodeMergeSmemBytes of shared memory (3 floats per row of a CTA's 64 rows at most).
inline constexpr int kDecodeMergeMaxRows = 64;
inline constexpr int kDecodeMergeSmemBytes = 3 * kDecodeMergeMaxRows * 4;

template <class Element>
__device__ __forceinline__ void decode_merge_cta(const DecodeParams& p, int merge_index, int thread, int threads,
                                                 uint8_t* scratch) {
  float* row_top = reinterpret_cast<float*>(scratch);  // (rows) per row: max, 1 / denominator, LSE
  float* row_inv_denom = row_top + kDecodeMergeMaxRows;
  float* row_lse = row_inv_denom + kDecodeMergeMaxRows;
  const DecodeMerge m = p.merges[merge_index];
  const DecodeSegment seg = p.segments[m.segment];
  const int warp = thread / 32, lane = thread % 32, warps = threads / 32;
  auto lse_of = [&](int s, int r) { return __ldcg(p.partial_lse + (m.first_partial + s) * p.rows_per_cta + r); };
  for (int r = warp; r < seg.rows; r += warps) {
    const int row = seg.row0 + r, head = seg.kv_head * p.group + row % p.group;
    const float sink = p.sink_logits ? p.sink_logits[head] : -INFINITY;
    float top = sink;
    bool nan = false;
    for (int s = lane; s < m.partials; s += 32) {
      const float l = lse_of(s, r);
      nan = nan || l != l;
      top = fmaxf(top, l);
    }
    for (int o = 16; o > 0; o /= 2) {
      top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
      nan = __shfl_xor_sync(0xffffffffu, static_cast<int>(nan), o) != 0 || nan;
    }
    float denom = 0.f;
    if (!nan && top != -INFINITY)
      for (int s = lane; s < m.partials; s += 32) {
        const float l = lse_of(s, r);
        denom += l == -INFINITY ? 0.f : expf(l - top);
      }
    for (int o = 16; o > 0; o /= 2) denom += __shfl_xor_sync(0xffffffffu, denom, o);
    if (lane == 0) {
      if (nan) {
        row_top[r] = row_inv_denom[r] = row_lse[r] = nanf("");
      } else if (top == -INFINITY) {
        row_top[r] = -INFINITY, row_inv_denom[r] = 0.f, row_lse[r] = -INFINITY;
      } else {
        denom += sink == -INFINITY ? 0.f : expf(sink - top);
        row_top[r] = top, row_inv_denom[r] = 1.f / denom, row_lse[r] = top + logf(denom);
      }
    }
  }
  __syncthreads();
  const int chunks = p.dv / 4;
  for (int unit = thread; unit < seg.rows * chunks; unit += threads) {
    const int r = unit / chunks, c = (unit % chunks) * 4;
    const int row = seg.row0 + r, token = row / p.group, head = seg.kv_head * p.group + row % p.group;
    const float top = row_top[r], inv = row_inv_denom[r];
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (top != top) {
      acc = make_float4(top, top, top, top);
    } else if (top != -INFINITY) {
#pragma unroll 8
      for (int s = 0; s < m.partials; ++s) {
        const int slot = m.first_partial + s;
        const float l = __ldcg(p.partial_lse + slot * p.rows_per_cta + r);
        const float w = l == -INFINITY ? 0.f : expf(l - top) * inv;
        const float4 o = __ldcg(reinterpret_cast<const float4*>(
            p.partial_o + (static_cast<int64_t>(slot) * p.rows_per_cta + r) * p.dv + c));
        acc.x += w * o.x, acc.y += w * o.y, acc.z += w * o.z, acc.w += w * o.w;
      }
    }
    Element* dst = static_cast<Element*>(p.out) + seg.batch * p.o_batch + token * p.o_token + head * p.o_head + c;
    uint32_t* dst32 = reinterpret_cast<uint32_t*>(dst);
    dst32[0] = pack_pair<Element>(acc.x, acc.y);
    dst32[1] = pack_pair<Element>(acc.z, acc.w);
    if (c == 0 && p.lse != nullptr) p.lse[seg.batch * p.lse_batch + head * p.lse_head + token * p.lse_token] = row_lse[r];
  }
}

}  // namespace omniattn::detail::cuda
