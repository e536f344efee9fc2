#pragma once
// The forward mainloop of one CTA: for each KV tile the tile needs,
//   S = Q K^T  ->  logits (ScoreMod, only with softcap / ALiBi)  ->  mask (boundary tiles only)
//   ->  online softmax  ->  O += P V.
//
// Two cp.async pipelines (FwdTuning::stages):
//  2 stages (K/V double buffer, one barrier per step): tile i+1 is loaded while tile i is computed.
//    top of step i:  wait all; barrier   (tile i landed; every warp is done with step i-1, whose buffer
//                                         tile i+1 now overwrites)
//                    issue K_{i+1}, V_{i+1}
//                    S = Q K_i^T, score mod, mask, softmax, O += P V_i
//  1 stage (FlashAttention-2's schedule, one K and one V buffer): V_i loads during S = Q K_i^T, and
//    K_{i+1} during the softmax and O += P V_i.
//    top of step i:  wait all; barrier   (K_i landed; every warp is done reading V_{i-1})
//                    issue V_i;  S = Q K_i^T, score mod, mask
//                    wait all; barrier   (V_i landed; every warp is done reading K_i)
//                    issue K_{i+1};  softmax, O += P V_i
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/common/online_softmax.cuh"
#include "cuda/flash/fwd_scheduler.cuh"
#include "cuda/flash/fwd_score_mask.cuh"
#include "cuda/flash/fwd_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct FwdMainloop {
  using Element = typename Traits::Element;
  using QTile = typename Traits::QTile;
  using KTile = typename Traits::KTile;
  using VTile = typename Traits::VTile;
  using SAcc = typename Traits::SAcc;
  using OAcc = typename Traits::OAcc;
  static constexpr int kThreads = Traits::kThreads;
  static constexpr int kBlockN = Traits::kBlockN;
  static constexpr int kRowSlots = Traits::kRowSlots;

  /// Packed query row -> (token, query head); see FwdParams::pack.
  static __device__ __forceinline__ int token_of(const FwdParams& p, int row) { return TileScores<SAcc>::token_of(p, row); }
  static __device__ __forceinline__ int head_of(const FwdParams& p, const CtaWork& w, int row) {
    return TileScores<SAcc>::head_of(p, w, row);
  }

  /// Q tile (kBlockM, kD): row r is packed row w.row0 + r; rows past the sequence are zero-filled.
  static __device__ __forceinline__ void load_q(const FwdParams& p, const CtaWork& w, uint32_t q_smem, int thread) {
    constexpr int kChunks = QTile::kRows * QTile::kChunksPerRow;
    static_assert(kChunks % kThreads == 0, "every thread copies the same number of Q chunks");
    const Element* q = static_cast<const Element*>(p.q) + w.batch * p.q_batch;
#pragma unroll
    for (int i = 0; i < kChunks / kThreads; ++i) {
      const int chunk = thread + i * kThreads;
      const int r = chunk / QTile::kChunksPerRow, c = (chunk % QTile::kChunksPerRow) * 8;
      const int row = w.row0 + r;
      const bool valid = row < w.rows;
      const Element* src =
          valid ? q + (w.seq.q_begin + token_of(p, row)) * p.q_token + head_of(p, w, row) * p.q_head + c : q;
      cp_async_16(q_smem + QTile::offset(r, c), src, valid);
    }
  }

  /// Runs the KV tiles of `w` into `o` (unnormalized) and `softmax` (running max and sums): `tiles` is w.kv, or
  /// under a block mask the listed tiles (SparseKvWalk); both have count and block(it) = kernel KV tile of
  /// step it.
  template <class Tiles>
  static __device__ __forceinline__ void run(const FwdParams& p, const CtaWork& w, const Tiles& tiles, uint8_t* smem,
                                             OAcc& o, OnlineSoftmax<kRowSlots>& softmax) {
    const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
    const int warp_row0 = warp * Traits::kWarpRows;
    const uint32_t q_smem = smem_address(smem) + Traits::kQOffset;
    const uint32_t k_smem = smem_address(smem) + Traits::kKOffset;  // stage s at + s * KTile::kBytes
    const uint32_t v_smem = smem_address(smem) + Traits::kVOffset;  // stage s at + s * VTile::kBytes
    const SequenceMask mask{w.seq.q_len, w.seq.k_len, p.window_left, p.window_right, p.sinks};

    // Row 0 of this sequence's keys / values for the tile's KV head.
    const int kv_head = w.head_block * p.pack / p.group;
    const Element* k_rows =
        static_cast<const Element*>(p.k) + w.batch * p.k_batch + w.seq.k_begin * p.k_token + kv_head * p.k_head;
    const Element* v_rows =
        static_cast<const Element*>(p.v) + w.batch * p.v_batch + w.seq.k_begin * p.v_token + kv_head * p.v_head;
    auto load_k = [&](int j0, int stage) {  // (kBlockN, kD) keys j0..
      copy_rows_async<KTile, kThreads>(k_smem + stage * KTile::kBytes, k_rows + j0 * p.k_token, p.k_token,
                                       w.seq.k_len - j0, thread);
    };
    auto load_v = [&](int j0, int stage) {  // (kBlockN, kDv) values j0..
      copy_rows_async<VTile, kThreads>(v_smem + stage * VTile::kBytes, v_rows + j0 * p.v_token, p.v_token,
                                       w.seq.k_len - j0, thread);
    };

    const uint32_t q_lane = q_smem + QTile::offset(warp_row0, 0) + QTile::a_lane_offset(lane);
    const uint32_t k_lane = k_smem + KTile::b_lane_offset(lane);
    const uint32_t v_lane = v_smem + VTile::bt_lane_offset(lane);

    // One step on KV tile `it` (keys j0..) held in `stage`; `after_scores` runs between S and the softmax.
    auto step = [&](int it, int j0, int stage, auto&& after_scores) {
      [[maybe_unused]] uint64_t visible = ~uint64_t{0};  // element rule of a partial block, before S is live
      if constexpr (Tiles::kSparse) {
        if (tiles.partial(it)) visible = TileScores<SAcc>::template element_bits<true>(p, w, warp_row0, j0, lane);
      }
      SAcc s;  // (kWarpRows, kBlockN) f32
      s.fill(0.f);
      warp_gemm_qk<Element, QTile, KTile, Traits::kD>(s, q_lane, k_lane + stage * KTile::kBytes);
      if (p.general_logits) TileScores<SAcc>::apply_score_mod(s, p, w, mask, warp_row0, j0, lane);
      if (mask.classify(w.t_first, w.t_end, j0, j0 + kBlockN) != SequenceMask::Tile::full)
        TileScores<SAcc>::apply_mask(s, p, w, mask, warp_row0, j0, lane);
      if constexpr (Tiles::kSparse) {
        if (tiles.partial(it)) TileScores<SAcc>::apply_element_bits(s, visible);
      }
      after_scores();
      float rescale[kRowSlots];
      softmax.update(s, p.mult_log2, rescale);
      o.scale_rows(rescale);
      warp_gemm_pv<Element, VTile>(o, s, v_lane + stage * VTile::kBytes);
    };

    load_q(p, w, q_smem, thread);  // lands with the first K/V group
    if constexpr (Traits::kStages == 2) {
      if (tiles.count > 0) {
        load_k(tiles.block(0) * kBlockN, 0);
        load_v(tiles.block(0) * kBlockN, 0);
      }
      cp_async_commit();
      for (int it = 0; it < tiles.count; ++it) {
        cp_async_wait<0>();
        __syncthreads();
        if (it + 1 < tiles.count) {
          load_k(tiles.block(it + 1) * kBlockN, (it + 1) & 1);
          load_v(tiles.block(it + 1) * kBlockN, (it + 1) & 1);
        }
        cp_async_commit();
        step(it, tiles.block(it) * kBlockN, it & 1, [] {});
      }
    } else {
      static_assert(Traits::kStages == 1, "1 or 2 K/V stages");
      cp_async_commit();
      if (tiles.count > 0) load_k(tiles.block(0) * kBlockN, 0);
      cp_async_commit();
      for (int it = 0; it < tiles.count; ++it) {
        const int j0 = tiles.block(it) * kBlockN;
        cp_async_wait<0>();
        __syncthreads();
        load_v(j0, 0);
        cp_async_commit();
        step(it, j0, 0, [&] {
          cp_async_wait<0>();
          __syncthreads();
          if (it + 1 < tiles.count) load_k(tiles.block(it + 1) * kBlockN, 0);
          cp_async_commit();
        });
      }
    }
  }
};

}  // namespace omniattn::detail::cuda
