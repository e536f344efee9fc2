#pragma once
// The producer of the sm_90a forward: one thread of the producer warpgroup draws the CTA's tiles from the scheduler
// and issues every TMA load. For each tile: Q (once the consumers have released the previous tile's Q), then K
// and V of each KV tile into a ring of kStages buffers, each buffer reused once every consumer warp has
// released it (k_empty / v_empty). The ring's position runs on across tiles, so the next tile's first K/V
// tiles load while the consumers finish the current one. K and V complete on separate barriers so that
// S = Q K^T starts before V has landed. Under a block mask the producer alone walks the lists and hands each
// tile's KV count and each stage's tile to the consumers through shared memory (Sm90Barriers).
#include "cuda/common/warpgroup.cuh"
#include "cuda/flash/sm90_params.hpp"
#include "cuda/flash/sm90_scheduler.cuh"
#include "cuda/flash/sm90_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90Producer {
  static constexpr int kStages = Traits::kStages;

  static __device__ __forceinline__ void run(const Sm90Params& p, uint8_t* smem, Sm90Barriers<kStages>& bar) {
    const int tiles = static_cast<int>(Sm90TileScheduler::tiles(p.base));
    int kv_iter = 0;  // position in the K/V ring, across tiles
    int tile_iter = 0;
    const int ctas = static_cast<int>(gridDim.x);
    for (int t = static_cast<int>(blockIdx.x); t < tiles; t = Sm90TileScheduler::next(p.counters, tiles, ctas)) {
      CtaWork w;
      if (!make_cta_work<Traits::kBlockM, Traits::kBlockN>(p.base, Sm90TileScheduler::tile(p.base, p.section, t), w)) continue;
      if constexpr (Traits::kBlockSparse) {
        if (p.base.is_sparse()) {  // the walk's loads run while the consumers still work on the previous tile
          load_tile(p, w, make_cta_sparse_walk<Traits::kBlockN>(p.base, w), t, smem, bar, kv_iter, tile_iter);
          continue;
        }
      }
      load_tile(p, w, w.kv, t, smem, bar, kv_iter, tile_iter);
    }
    // The end of the schedule: once the last tile's Q is released, a bare arrival completes q_full with tile -1.
    mbarrier_wait(&bar.q_empty, (tile_iter & 1) ^ 1);
    *reinterpret_cast<volatile int32_t*>(&bar.tile) = -1;
    mbarrier_arrive(&bar.q_full);
  }

  /// Q, then the K/V tiles of `tiles` (KvRange, or SparseKvWalk whose steps are handed to the consumers).
  template <class Tiles>
  static __device__ __forceinline__ void load_tile(const Sm90Params& p, const CtaWork& w, const Tiles& tiles,
                                                   int tile_index, uint8_t* smem, Sm90Barriers<kStages>& bar,
                                                   int& kv_iter, int& tile_iter) {
    const int head = w.head_block;  // GQA packing is off on this path: one query head per tile
    const int kv_head = head / p.base.group;
    // Uniform batches: one map per operand, batch coordinate b. Varlen: the sequence's own maps, batch 0.
    const bool own = p.seq_maps != nullptr;
    const CUtensorMap* q_map = own ? &p.seq_maps[Sm90Params::kMapsPerSequence * w.batch] : &p.q_map;
    const CUtensorMap* k_map = own ? &p.seq_maps[Sm90Params::kMapsPerSequence * w.batch + 1] : &p.k_map;
    const CUtensorMap* v_map = own ? &p.seq_maps[Sm90Params::kMapsPerSequence * w.batch + 2] : &p.v_map;
    const int batch = own ? 0 : w.batch;

    mbarrier_wait(&bar.q_empty, (tile_iter & 1) ^ 1);  // a fresh barrier's "previous phase" is complete
    // Every consumer warp read the previous tile's index and count before releasing its Q; these are published
    // by the release of the arrive below and read after q_full.
    *reinterpret_cast<volatile int32_t*>(&bar.tile) = tile_index;
    if constexpr (Tiles::kSparse) *reinterpret_cast<volatile int32_t*>(&bar.kv_count) = tiles.count;
    mbarrier_expect_bytes(&bar.q_full, Traits::kQBytes);
#pragma unroll
    for (int b = 0; b < Traits::kD / 64; ++b)
      tma_load_4d(smem + Traits::kQOffset + b * Traits::kQBoxBytes, q_map, 64 * b, w.row0, head, batch, &bar.q_full);
    ++tile_iter;

    for (int it = 0; it < tiles.count; ++it, ++kv_iter) {
      const int stage = kv_iter % kStages;
      const uint32_t free_parity = ((kv_iter / kStages) & 1) ^ 1;
      const int j0 = tiles.block(it) * Traits::kBlockN;
      mbarrier_wait(&bar.k_empty[stage], free_parity);
      if constexpr (Tiles::kSparse) {  // the stage's previous tile was read before k_empty; read after k_full
        volatile int32_t* slot = &bar.kv_tile[stage].j0;
        slot[0] = j0;
        slot[1] = tiles.partial(it) ? 1 : 0;
      }
      mbarrier_expect_bytes(&bar.k_full[stage], Traits::kKBytes);
#pragma unroll
      for (int b = 0; b < Traits::kD / 64; ++b)
        tma_load_4d(smem + Traits::kKOffset + stage * Traits::kKBytes + b * Traits::kKvBoxBytes, k_map, 64 * b, j0,
                    kv_head, batch, &bar.k_full[stage]);
      mbarrier_wait(&bar.v_empty[stage], free_parity);
      mbarrier_expect_bytes(&bar.v_full[stage], Traits::kVBytes);
#pragma unroll
      for (int b = 0; b < Traits::kDv / 64; ++b)
        tma_load_4d(smem + Traits::kVOffset + stage * Traits::kVBytes + b * Traits::kKvBoxBytes, v_map, 64 * b, j0,
                    kv_head, batch, &bar.v_full[stage]);
    }
  }
};

}  // namespace omniattn::detail::cuda
