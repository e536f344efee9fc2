#pragma once
// The decode math of one K/V tile of a work item (the pipeline that feeds it is decode_cta.cuh's):
//   S = Q K^T (each warp: its 16 rows x its key slice)  ->  logits / mask (boundary tiles only)
//   ->  online softmax  ->  O += P V.
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/common/online_softmax.cuh"
#include "cuda/decode/decode_params.hpp"
#include "cuda/decode/decode_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct DecodeMainloop {
  using Element = typename Traits::Element;
  using QTile = typename Traits::QTile;
  using KTile = typename Traits::KTile;
  using VTile = typename Traits::VTile;
  using SAcc = typename Traits::SAcc;
  using OAcc = typename Traits::OAcc;
  static constexpr int kBlockN = Traits::kBlockN;

  /// The warp's scores of the tile at key0 -> logits (ScoreMod) and -inf where masked. The warp's rows start at
  /// packed row seg.row0 + warp_row0; its keys at key0 + warp_key0.
  static __device__ __forceinline__ void scores(SAcc& s, const DecodeParams& p, const DecodeSegment& seg,
                                                const SequenceMask& mask, int warp_row0, int key0, bool boundary,
                                                int lane) {
    const int col0 = key0 + SAcc::col_of(0, 0, lane);  // key of element (n = 0, e = 0)
#pragma unroll
    for (int r = 0; r < SAcc::kRowSlots; ++r) {
      const int row = seg.row0 + warp_row0 + SAcc::row_of_slot(r, lane);
      const int token_raw = row / p.group;
      const int token = token_raw < p.sq ? token_raw : p.sq - 1;  // padding rows: any token (never stored)
      if (p.general_logits) {
        const int head = seg.kv_head * p.group + row % p.group;
        const float slope = p.alibi ? p.alibi[seg.batch * p.alibi_batch_stride + head] : 0.f;
        const ScoreMod<float> mod{p.scale, p.softcap, slope};
        const int64_t diag_rel = mask.diag(token) - col0;  // |diag - key| is all ALiBi needs
#pragma unroll
        for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = s.v[0][n][2 * (r % 2) + e];
            x = mod.logit(x, diag_rel, 8 * n + e);
          }
      }
      if (!boundary) continue;
      // SequenceMask::visible relative to col0 (keys and col0 < 2^31).
      const int64_t end = mask.key_end(token) - col0, begin = mask.key_begin(token) - col0;
      const int64_t sinks = (mask.sinks < mask.sk ? mask.sinks : mask.sk) - col0;
#pragma unroll
      for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = 8 * n + e;
          if (!(c < end && (c >= begin || c < sinks))) s.v[0][n][2 * (r % 2) + e] = -INFINITY;
        }
    }
  }

  /// The item's constants of the per-tile math (set when the CTA's walk reaches the item).
  struct ItemMath {
    SequenceMask mask;
    int64_t t_first = 0, t_end = 0;  // query tokens of the item's rows
    bool active = false;             // the warp's 16 rows hold a real row (padding warps compute nothing)
    ItemMath() = default;
    __device__ __forceinline__ ItemMath(const DecodeParams& p, const DecodeSegment& seg, int warp_row0)
        : mask{p.sq, seg.seq_len, p.window_left, p.window_right, p.sinks},
          t_first(seg.row0 / p.group),
          t_end((seg.row0 + seg.rows - 1) / p.group + 1),
          active(warp_row0 < seg.rows) {}
  };

  /// One tile (keys key0 ..) of the item into `o` (unnormalized) and `softmax`: Q in q_smem (kRows, kD), K and V
  /// in the stage at k_stage (K tile, then V tile).
  static __device__ __forceinline__ void tile(const DecodeParams& p, const DecodeSegment& seg, const ItemMath& m,
                                              int key0, uint32_t q_smem, uint32_t k_stage, OAcc& o,
                                              OnlineSoftmax<2>& softmax) {
    const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
    const int warp_row0 = 16 * (warp / Traits::kKeyWarps), warp_key0 = Traits::kWarpKeys * (warp % Traits::kKeyWarps);
    SAcc s;  // (16, kWarpKeys) f32
    s.fill(0.f);
    warp_gemm_qk<Element, QTile, KTile, Traits::kD>(
        s, q_smem + QTile::offset(warp_row0, 0) + QTile::a_lane_offset(lane),
        k_stage + KTile::offset(warp_key0, 0) + KTile::b_lane_offset(lane));
    const bool boundary = m.mask.classify(m.t_first, m.t_end, key0, key0 + kBlockN) != SequenceMask::Tile::full;
    if (p.general_logits || boundary) scores(s, p, seg, m.mask, warp_row0, key0 + warp_key0, boundary, lane);
    float rescale[2];
    softmax.update(s, p.mult_log2, rescale);
    o.scale_rows(rescale);
    warp_gemm_pv<Element, VTile>(
        o, s, k_stage + KTile::kBytes + VTile::offset(warp_key0, 0) + VTile::bt_lane_offset(lane));
  }
};

}  // namespace omniattn::detail::cuda
