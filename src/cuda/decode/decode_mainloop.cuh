#pragma once
// The decode mainloop of one work item (a run of tiles of one segment): a kStages-deep cp.async pipeline of
// K/V tiles gathered through the block table, and per tile
//   S = Q K^T (each warp: its 16 rows x its key slice)  ->  logits / mask (boundary tiles only)
//   ->  online softmax  ->  O += P V.
// Pipeline (groups: Q, then one per tile):
//   prologue: Q; tiles 0 .. kStages-2
//   step i:   wait until tile i landed; barrier (its copies visible to all warps; every warp done with tile
//             i-1, whose stage tile i+kStages-1 now overwrites); issue tile i+kStages-1; compute tile i.
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/common/online_softmax.cuh"
#include "cuda/decode/decode_load.cuh"
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
  using Load = DecodeLoad<Traits>;
  static constexpr int kStages = Traits::kStages;
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

  /// Runs tiles [item.tile_begin, item.tile_end) of `seg` into `o` (unnormalized) and `softmax`.
  static __device__ __forceinline__ void run(const DecodeParams& p, const DecodeSegment& seg, const DecodeItem& item,
                                             uint8_t* smem, OAcc& o, OnlineSoftmax<2>& softmax, bool& bad_page) {
    const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
    const int row_warp = warp / Traits::kKeyWarps, key_warp = warp % Traits::kKeyWarps;
    const int warp_row0 = 16 * row_warp, warp_key0 = Traits::kWarpKeys * key_warp;
    const uint32_t q_smem = smem_address(smem) + Traits::kQOffset;
    const uint32_t stages = smem_address(smem) + Traits::kStageOffset;  // stage s: K at + s*kStageBytes, V after
    const SequenceMask mask{p.sq, seg.seq_len, p.window_left, p.window_right, p.sinks};
    const int64_t t_first = seg.row0 / p.group, t_end = (seg.row0 + seg.rows - 1) / p.group + 1;  // tokens of the CTA
    const int tiles = item.tile_end - item.tile_begin;
    // A warp whose 16 rows are all padding computes nothing (it still loads and meets every barrier).
    const bool active = warp_row0 < seg.rows;

    auto key_of = [&](int i) { return seg.tiles.key(item.tile_begin + i) * kBlockN; };  // first key of tile i
    // `next`: the page ids of the next tile to copy, read one step ahead of its copies.
    typename Load::TilePages next = Load::pages_of(p, seg, key_of(0), thread);
    auto load_tile = [&](int i) {  // virtual tile item.tile_begin + i into stage i % kStages; prefetch i + 1's ids
      const uint32_t k_stage = stages + (i % kStages) * Traits::kStageBytes;
      Load::kv_tile(p, seg, key_of(i), next, k_stage, k_stage + KTile::kBytes, thread, bad_page);
      if (i + 1 < tiles) next = Load::pages_of(p, seg, key_of(i + 1), thread);
    };

    Load::q_rows(p, seg, q_smem, thread);
    cp_async_commit();
#pragma unroll
    for (int i = 0; i < kStages - 1; ++i) {
      if (i < tiles) load_tile(i);
      cp_async_commit();
    }

    const uint32_t q_lane = q_smem + QTile::offset(warp_row0, 0) + QTile::a_lane_offset(lane);
    for (int i = 0; i < tiles; ++i) {
      cp_async_wait<kStages - 2>();
      __syncthreads();
      if (i + kStages - 1 < tiles) load_tile(i + kStages - 1);
      cp_async_commit();
      if (!active) continue;

      const uint32_t k_stage = stages + (i % kStages) * Traits::kStageBytes;
      const int key0 = seg.tiles.key(item.tile_begin + i) * kBlockN;
      SAcc s;  // (16, kWarpKeys) f32
      s.fill(0.f);
      warp_gemm_qk<Element, QTile, KTile, Traits::kD>(
          s, q_lane, k_stage + KTile::offset(warp_key0, 0) + KTile::b_lane_offset(lane));
      const bool boundary = mask.classify(t_first, t_end, key0, key0 + kBlockN) != SequenceMask::Tile::full;
      if (p.general_logits || boundary) scores(s, p, seg, mask, warp_row0, key0 + warp_key0, boundary, lane);
      float rescale[2];
      softmax.update(s, p.mult_log2, rescale);
      o.scale_rows(rescale);
      warp_gemm_pv<Element, VTile>(
          o, s, k_stage + KTile::kBytes + VTile::offset(warp_key0, 0) + VTile::bt_lane_offset(lane));
    }
    cp_async_wait<0>();
    __syncthreads();  // every copy landed and every warp done with the stages: the epilogue may reuse them
  }
};

}  // namespace omniattn::detail::cuda
