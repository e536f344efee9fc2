#pragma once
// The loader warps of the sm_90a backward: warps 0, 2 and 3 of the producer warpgroup (one per SM sub-partition
// other than the dQ writer's) each walk the CTA's steps (their own BwdWalk, the same sequence the consumers and
// the writer walk) and fill the shared-memory stages with cp.async, each a third of every tile's rows: K and V
// once, then per step Q, dO (128-byte swizzled, rows past the sequence zero-filled) and, from loader 0, the
// step's LSE * log2e and D rows. One warp alone sustained ~32 KB per 5 us (log step 7): the copies in flight per
// sub-partition are limited. Completion reaches the consumers through mbarriers: each loader thread's
// cp.async.mbarrier.arrive.noinc fires when its own copies have landed (kLoaderThreads arrivals per phase); a
// stage is refilled once every consumer warp has released it (empty[s]).
#include <cuda/ptx>

#include "cuda/bwd/bwd_sparse.cuh"
#include "cuda/bwd/sm90_bwd_traits.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/common/warpgroup.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90BwdLoader {
  using Element = typename Traits::Element;
  using T = Traits;
  static constexpr int kBlockM = T::kBlockM, kStages = T::kStages;

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

  static __device__ __forceinline__ void run(const BwdParams& p, const BwdKvWork& w, uint8_t* smem,
                                             Sm90BwdBarriers<kStages>& bar, int loader, int lane) {
    const uint32_t base = smem_address(smem);
    const SequenceMask mask = bwd_mask(p, w.seq);
    BwdWalk<kBlockM> walk;
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
    for (int it = 0; more; ++it) {
      const int stage = it % kStages;
      mbarrier_wait(&bar.empty[stage], ((it / kStages) & 1) ^ 1);  // a fresh barrier's "previous phase" is complete
      const int h = step.head, t0 = step.m * kBlockM;
      const uint32_t s = base + T::kStage0 + stage * T::kStageBytes;
      copy_tile<typename T::QTile>(s + T::kQOffset, BwdRows<Element>::q(p, w, t0, h), p.q_token, w.seq.q_len - t0,
                                   loader, lane);
      copy_tile<typename T::DoTile>(s + T::kDoOffset, BwdRows<Element>::dout(p, w, t0, h), p.do_token,
                                    w.seq.q_len - t0, loader, lane);
      // LSE * log2e and D of the step's rows: kBlockM / 4 16-byte chunks each, one chunk per lane.
      constexpr int kRowChunks = kBlockM / 4;
      static_assert(2 * kRowChunks == 32, "one 16-byte row chunk per lane");
      const int64_t rows = bwd_row_block(p, w, step) * kBlockM;
      const uint32_t r = base + T::kRowsOffset + stage * T::kRowsBytes;
      const float* from = lane < kRowChunks ? p.lse_log2 + rows + 4 * lane : p.dsum + rows + 4 * (lane - kRowChunks);
      if (loader == 0) cp_async_16(r + 16 * lane, from, true);
      ::cuda::ptx::cp_async_mbarrier_arrive_noinc(&bar.full[stage]);
      more = walk.next(p, w, mask, step);
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its issuing thread
  }
};

}  // namespace omniattn::detail::cuda
