#pragma once
// Online softmax over the rows of a warp's score fragments (FlashAttention's running max / running sum).
//
// Scores s arrive in "score units"; `mult_log2` > 0 converts them to base-2 logits (s * mult_log2 =
// logit * log2(e)). For plain attention s is the raw Q.K dot and mult_log2 = scale * log2(e), so scaling
// costs nothing: exp2(s * mult_log2 - max * mult_log2) is one FFMA and one EX2 per score. When a score
// modifier already produced real logits, mult_log2 = log2(e).
//
// Masked scores are -inf. A row whose scores so far are all -inf keeps max = -inf; its exponent reference is
// taken as 0 so that exp2(-inf - ref) = 0 and never NaN (FlashAttention's Check_inf).
// Row sums stay per-thread partial (each lane of a quad sums its own columns); they are reduced across the
// quad once, in finalize(), since every lane of a quad applies the same rescale factors.
#include <cmath>

#include "cuda/common/fragments.cuh"

namespace omniattn::detail::cuda {

/// Quad (4 lanes holding one row) reductions.
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

template <int kRowSlots>
struct OnlineSoftmax {
  float row_max[kRowSlots];  // running max of the scores seen (score units), -inf before any visible score
  float row_sum[kRowSlots];  // this lane's part of sum exp2(s * mult - row_max * mult)

  __device__ __forceinline__ void init() {
#pragma unroll
    for (int r = 0; r < kRowSlots; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.f;
    }
  }

  /// Folds a tile of scores into the running statistics: replaces s by exp2(s * mult - new_max * mult)
  /// (unnormalized probabilities) and returns in `rescale` the factor by which earlier accumulations of
  /// each row slot must be multiplied (exp2((old_max - new_max) * mult); 0 while the row was empty).
  template <int kM, int kN>
  __device__ __forceinline__ void update(AccTile<kM, kN>& s, float mult_log2, float (&rescale)[kRowSlots]) {
    static_assert(2 * kM == kRowSlots, "one row slot per (m16 block, half)");
#pragma unroll
    for (int r = 0; r < kRowSlots; ++r) {
      const int m = r / 2, half = r % 2;
      float tile_max = row_max[r];
#pragma unroll
      for (int n = 0; n < kN; ++n) tile_max = fmaxf(tile_max, fmaxf(s.v[m][n][2 * half], s.v[m][n][2 * half + 1]));
      tile_max = quad_max(tile_max);
      const float ref = tile_max == -INFINITY ? 0.f : tile_max * mult_log2;
      rescale[r] = fast_exp2(row_max[r] * mult_log2 - ref);
      row_max[r] = tile_max;
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float p = fast_exp2(fmaf(s.v[m][n][2 * half + e], mult_log2, -ref));
          s.v[m][n][2 * half + e] = p;
          sum += p;
        }
      row_sum[r] = fmaf(row_sum[r], rescale[r], sum);
    }
  }

  /// Final statistics of row slot r, with an optional extra logit `sink_log2` (base-2 units; -inf for none)
  /// that joins the denominator without a value vector. Returns the factor that turns the accumulated
  /// output into the normalized one (0 for a row with an empty denominator) and sets `lse` (natural log;
  /// -inf for an empty row).
  __device__ __forceinline__ float finalize(int r, float mult_log2, float sink_log2, float& lse) const {
    const float sum = quad_sum(row_sum[r]);
    const float max_log2 = row_max[r] == -INFINITY ? -INFINITY : row_max[r] * mult_log2;
    const float top = fmaxf(max_log2, sink_log2);  // reference exponent of the combined denominator
    if (top == -INFINITY) {                        // no visible key and no sink logit
      lse = -INFINITY;
      return 0.f;
    }
    const float keep = fast_exp2(max_log2 - top);  // 1 unless the sink logit dominates; 0 for an empty row
    const float denom = sum * keep + fast_exp2(sink_log2 - top);
    lse = (top + __log2f(denom)) * 0.69314718055994531f;
    return keep / denom;
  }
};

}  // namespace omniattn::detail::cuda
