#pragma once
// Scores -> logits (ScoreMod) and the element mask (SequenceMask) on one warp's score fragments, shared by the
// sm_80 and sm_90a forward mainloops. SAcc is the warp's AccTile of scores (kM m16 blocks x kN n8 blocks); the
// tile's rows are packed query rows (FwdParams::pack) starting at w.row0 + warp_row0, its columns keys j0...
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/flash/fwd_scheduler.cuh"

namespace omniattn::detail::cuda {

template <class SAcc>
struct TileScores {
  /// Packed query row -> (token, query head); see FwdParams::pack.
  static __device__ __forceinline__ int token_of(const FwdParams& p, int row) { return row / p.pack; }
  static __device__ __forceinline__ int head_of(const FwdParams& p, const CtaWork& w, int row) {
    return w.head_block * p.pack + row % p.pack;
  }

  // Both score passes address a lane's scores relative to col0 = key of its element (n = 0, e = 0): element
  // (n, e) is key col0 + 8n + e, a compile-time offset, so the per-score work is immediate compares.

  /// Scores -> logits with the shared ScoreMod (scale, softcap, ALiBi), for every score of the tile.
  static __device__ __forceinline__ void apply_score_mod(SAcc& s, const FwdParams& p, const CtaWork& w,
                                                         const SequenceMask& mask, int warp_row0, int j0, int lane) {
    const int col0 = j0 + SAcc::col_of(0, 0, lane);
#pragma unroll
    for (int r = 0; r < SAcc::kRowSlots; ++r) {
      const int row = w.row0 + warp_row0 + SAcc::row_of_slot(r, lane);
      const int head = head_of(p, w, row);
      const float slope = p.alibi ? p.alibi[w.batch * p.alibi_batch_stride + head] : 0.f;
      const ScoreMod<float> mod{p.scale, p.softcap, slope};
      // |diag - key| is all ALiBi needs: shift both by col0.
      const int64_t diag_rel = mask.diag(token_of(p, row)) - col0;
#pragma unroll
      for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s.v[r / 2][n][2 * (r % 2) + e];
          x = mod.logit(x, diag_rel, 8 * n + e);
        }
    }
  }

  /// Sets invisible scores to -inf; called only for tiles that SequenceMask::classify calls partial.
  static __device__ __forceinline__ void apply_mask(SAcc& s, const FwdParams& p, const CtaWork& w,
                                                    const SequenceMask& mask, int warp_row0, int j0, int lane) {
    const int col0 = j0 + SAcc::col_of(0, 0, lane);
    auto relative = [col0](int64_t key) {  // key - col0, clamped to int (keys and col0 are < 2^31)
      const int64_t d = key - col0;
      return static_cast<int>(d < INT32_MIN ? INT32_MIN : (d > INT32_MAX ? INT32_MAX : d));
    };
#pragma unroll
    for (int r = 0; r < SAcc::kRowSlots; ++r) {
      const int64_t token = token_of(p, w.row0 + warp_row0 + SAcc::row_of_slot(r, lane));
      // SequenceMask::visible(token, key) is key < key_end && (key >= key_begin || key < sinks), keys >= 0;
      // the same bounds relative to col0:
      const int end = relative(mask.key_end(token));
      const int begin = relative(mask.key_begin(token));
      const int sinks = relative(mask.sinks < mask.sk ? mask.sinks : mask.sk);
#pragma unroll
      for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = 8 * n + e;
          if (!(c < end && (c >= begin || c < sinks))) s.v[r / 2][n][2 * (r % 2) + e] = -INFINITY;
        }
    }
  }

};

}  // namespace omniattn::detail::cuda
