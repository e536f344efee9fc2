#pragma once
// Compile-time shape of one sm_90a forward instantiation, derived from its tuning row (sm90_config.hpp):
// shared-memory layout, barrier slots and register tiles.
#include "cuda/common/fragments.cuh"
#include "cuda/flash/sm90_config.hpp"

namespace omniattn::detail::cuda {

/// kSparseRow: the instantiation of a (D, Dv) whose block-sparse calls have their own row (sm90_has_sparse_row).
template <class Element_, int kD_, int kDv_, bool kSparseRow = false>
struct Sm90Traits {
  using Element = Element_;
  static constexpr int kD = kD_;
  static constexpr int kDv = kDv_;
  static constexpr Sm90Tuning kTune = sm90_tuning(kD, kDv, kSparseRow);
  static_assert(kTune.d == kD && kTune.dv == kDv && kTune.sparse_row == kSparseRow,
                "no row of kSm90TuningTable for this (D, Dv, sparse row)");

  static constexpr int kBlockM = kTune.block_m();
  static constexpr int kBlockN = kTune.block_n;
  static constexpr int kConsumers = kTune.consumers;
  static constexpr int kStages = kTune.stages;
  static constexpr int kThreads = kTune.threads();
  static constexpr int kProducerRegs = kTune.producer_regs;
  static constexpr int kConsumerRegs = kTune.consumer_regs;
  static constexpr bool kPingpong = kTune.pingpong && kTune.consumers > 1;
  // Whether block masks can run here: a query tile must lie inside one mask query block (64 or 128 tokens), so
  // 192-row tiles (3 consumers) never take one (refused on the host), nor do 80-key tiles, nor the dense row of a
  // (D, Dv) with a sparse row; those compile no sparse path, which would only cost the dense loop registers.
  static constexpr bool kBlockSparse =
      128 % kBlockM == 0 && 128 % kBlockN == 0 && (kSparseRow || !sm90_has_sparse_row(kD, kDv));

  // Shared memory, in 128-byte-swizzled boxes of 64 columns (TMA boxes; 1024-byte aligned):
  //   Q: kD/64 boxes of (kBlockM rows, 64)   K stage s: kD/64 boxes of (kBlockN, 64)   V stage s: kDv/64 boxes
  //   [O of consumer c: kDv/64 boxes of (64 rows, 64)].
  static constexpr int kQBoxBytes = kBlockM * 128;
  static constexpr int kKvBoxBytes = kBlockN * 128;
  static constexpr int kQBytes = kD / 64 * kQBoxBytes;
  static constexpr int kKBytes = kD / 64 * kKvBoxBytes;
  static constexpr int kVBytes = kDv / 64 * kKvBoxBytes;
  static constexpr int kQOffset = 0;
  static constexpr int kKOffset = kQOffset + kQBytes;                  // + stage * kKBytes
  static constexpr int kVOffset = kKOffset + kStages * kKBytes;        // + stage * kVBytes
  // O staging (o_through_smem): consumer c's 64 rows, kDv/64 boxes of (64 rows, 64) at kOOffset + c * kOConsumerBytes.
  static constexpr bool kOThroughSmem = kTune.o_through_smem;
  static constexpr int kOBoxBytes = 64 * 128;
  static constexpr int kOConsumerBytes = kOThroughSmem ? kDv / 64 * kOBoxBytes : 0;
  static constexpr int kOOffset = kVOffset + kStages * kVBytes;
  static constexpr int kBarrierOffset = kOOffset + kConsumers * kOConsumerBytes;  // uint64 mbarriers, Sm90Barriers
  static constexpr int kSmemBytes = static_cast<int>(kTune.smem_bytes());
  static_assert(kBarrierOffset == kTune.tile_bytes(), "shared memory layout and tuning table disagree");

  using SAcc = AccTile<1, kBlockN / 8>;  // (16 rows, kBlockN) f32 scores of one warp (64 rows per warpgroup)
  using OAcc = AccTile<1, kDv / 8>;      // (16 rows, kDv) f32 output of one warp
};

/// One KV tile of a block-sparse walk, handed from the producer to the consumers with its stage.
struct Sm90KvTile {
  int32_t j0;       // first key of the tile
  int32_t partial;  // 1: the tile lies in a partial mask block (the element mask decides its pairs)
};

/// The pipeline's mbarriers, in shared memory after the tiles, and the producer's hand-offs. Only the producer asks
/// the scheduler for tiles: it writes each tile's index before the tile's Q barrier completes (-1 with a bare
/// arrival when the schedule is over). Only the producer walks a tile's block lists (SparseKvWalk); it writes the
/// tile's KV count before Q's barrier completes and
/// each KV tile's (j0, partial) before its K barrier does, so the consumers' walk is the producer's by
/// construction (and the mbarrier and ping-pong rings stay balanced, zero listed tiles included).
template <int kStages>
struct Sm90Barriers {
  uint64_t q_full;           // Q landed (TMA transaction bytes)
  uint64_t q_empty;          // every consumer warp is done reading Q (the next tile's Q may load)
  uint64_t k_full[kStages];  // K stage landed
  uint64_t v_full[kStages];  // V stage landed
  uint64_t k_empty[kStages];  // every consumer warp is done reading K stage
  uint64_t v_empty[kStages];  // every consumer warp is done reading V stage
  int32_t kv_count;           // block-sparse: KV tiles of the tile whose Q is in flight (read after q_full)
  int32_t tile;               // the schedule's index of the tile whose Q is in flight, -1: no more (after q_full)
  Sm90KvTile kv_tile[kStages];  // block-sparse: the KV tile in each stage (read after k_full)
};

}  // namespace omniattn::detail::cuda
