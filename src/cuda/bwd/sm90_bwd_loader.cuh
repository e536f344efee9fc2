#pragma once
// The loaders of the sm_90a backward, warps 0, 2 and 3 of the producer warpgroup (warp 1 is the dQ writer):
//  - K and V, once per CTA: the three warps copy a third of the tile's rows each with cp.async (keys past k_len,
//    or past a 64-key mask block's keys, zero-filled: the TMA box would read the next keys), completing kv_full
//    with cp.async.mbarrier.arrive.noinc (kLoaderThreads arrivals).
//  - Per step, one thread: Q and dO of the step's query tile with TMA (rows past the sequence zero-filled by the
//    map's bounds), the step's LSE * log2e and D rows with bulk copies, all completing full[stage] through its
//    transaction count. A stage is refilled once every consumer thread has released it (empty[s]).
// The per-step loads went from 65 cp.async per lane of three warps to kD / 64 + kDv / 64 + 2 bulk requests
// (log step 11): cp.async at ~16 KB per step could not keep up with the consumers (log steps 7-9).
#include <cuda/ptx>

#include "cuda/bwd/bwd_sparse.cuh"
#include "cuda/bwd/sm90_bwd_params.hpp"
#include "cuda/bwd/sm90_bwd_traits.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/common/warpgroup.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90BwdLoader {
  using Element = typename Traits::Element;
  using T = Traits;
  static constexpr int kBlockM = T::kBlockM, kStages = T::kStages;
  // Bytes that complete full[stage]: Q, dO, then LSE * log2e and D (kBlockM f32 each).
  static constexpr uint32_t kStepBytes = T::kStageBytes + T::kRowsBytes;

  /// Loader `loader`'s share of a swizzled (Tile::kRows, Tile::kCols) tile from rows `row_stride` elements apart:
  /// lane l copies 16-byte chunk l % kChunksPerRow of every kLoaders-th group of 32 / kChunksPerRow rows. Rows >=
  /// valid_rows are zero-filled and not read. A rolled loop: the loaders run in kLoaderRegs registers.
  template <class Tile>
  static __device__ __forceinline__ void copy_tile(uint32_t tile, const Element* row0, int64_t row_stride,
                                                   int valid_rows, int loader, int lane) {
    constexpr int kChunksPerRow = Tile::kChunksPerRow, kRowsPerPass = 32 / kChunksPerRow;
    static_assert(32 % kChunksPerRow == 0, "whole rows per pass");
    const int col = (lane % kChunksPerRow) * 8;
#pragma unroll 4
    for (int row = loader * kRowsPerPass + lane / kChunksPerRow; row < Tile::kRows; row += T::kLoaders * kRowsPerPass) {
      const bool valid = row < valid_rows;
      cp_async_16(tile + Tile::offset(row, col), valid ? row0 + row * row_stride + col : row0, valid);
    }
  }

  template <BwdWalkKind kKind>
  static __device__ __forceinline__ void run(const Sm90BwdParams& sp, const BwdKvWork& w, uint8_t* smem,
                                             Sm90BwdBarriers<kStages>& bar, int loader, int lane) {
    const BwdParams& p = sp.base;
    const uint32_t base = smem_address(smem);
    const SequenceMask mask = bwd_mask(p, w.seq);
    BwdWalk<kBlockM, kKind> walk;
    walk.init(p, w);
    BwdStep step;
    bool more = walk.next(p, w, mask, step);
    if (!more) return;  // no query tile sees this KV tile: nothing to load

    {  // K, V: keys past k_len (or past the tile's keys) zero-filled, and masked by the consumers
      const int keys = min(w.seq.k_len - w.j0, p.tile_keys);
      copy_tile<typename T::KTile>(base + T::kKOffset, BwdRows<Element>::k(p, w), p.k_token, keys, loader, lane);
      copy_tile<typename T::VTile>(base + T::kVOffset, BwdRows<Element>::v(p, w), p.v_token, keys, loader, lane);
      ::cuda::ptx::cp_async_mbarrier_arrive_noinc(&bar.kv_full);
    }
    if (loader == 0 && lane == 0) {
      // Uniform batches: one map per operand, batch coordinate w.batch. Varlen: the sequence's own maps, batch 0.
      const bool own = sp.seq_maps != nullptr;
      const CUtensorMap* q_map = own ? &sp.seq_maps[Sm90BwdParams::kMapsPerSequence * w.batch] : &sp.q_map;
      const CUtensorMap* do_map = own ? &sp.seq_maps[Sm90BwdParams::kMapsPerSequence * w.batch + 1] : &sp.do_map;
      const int batch = own ? 0 : w.batch;
      for (int it = 0; more; ++it) {
        const int stage = it % kStages;
        mbarrier_wait(&bar.empty[stage], ((it / kStages) & 1) ^ 1);  // a fresh barrier's "previous phase" is complete
        uint8_t* s = smem + T::kStage0 + stage * T::kStageBytes;
        uint8_t* rows = smem + T::kRowsOffset + stage * T::kRowsBytes;  // LSE * log2e, then D
        const int64_t row0 = bwd_row_block(p, w, step) * kBlockM;
        const int t0 = step.m * kBlockM;
        mbarrier_expect_bytes(&bar.full[stage], kStepBytes);
#pragma unroll
        for (int b = 0; b < T::kD / 64; ++b)  // (64 columns, kBlockM rows) boxes
          tma_load_4d(s + T::kQOffset + b * T::QTile::kBoxBytes, q_map, 64 * b, t0, step.head, batch, &bar.full[stage]);
#pragma unroll
        for (int b = 0; b < T::kDv / 64; ++b)
          tma_load_4d(s + T::kDoOffset + b * T::DoTile::kBoxBytes, do_map, 64 * b, t0, step.head, batch,
                      &bar.full[stage]);
        bulk_load(rows, p.lse_log2 + row0, 4 * kBlockM, &bar.full[stage]);
        bulk_load(rows + 4 * kBlockM, p.dsum + row0, 4 * kBlockM, &bar.full[stage]);
        more = walk.next(p, w, mask, step);
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its issuing thread
  }
};

}  // namespace omniattn::detail::cuda
