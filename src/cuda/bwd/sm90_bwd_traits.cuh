#pragma once
// Compile-time shape of the sm_90a backward main kernel (wgmma). It keeps the sm_80 backward's work split and
// workspace (same block_m x block_n, BwdTraits `Base`: the preprocess / postprocess kernels, the walk, the
// score -> gradient math and the dQ turns are shared), and replaces the warp GEMMs by warpgroup GEMMs: 2
// consumer warpgroups, consumer warpgroup w owns keys [64w, 64w + 64) of the CTA's 128-key tile; three loader
// warps and a dQ writer warp feed and drain them.
#include <cstdint>

#include "cuda/bwd/bwd_traits.cuh"
#include "cuda/common/fragments.cuh"
#include "cuda/common/swizzled_tile.cuh"

namespace omniattn::detail::cuda {

/// The pipeline's mbarriers, after the tiles. kv_full: K and V landed (one arrival per loader thread:
/// cp.async.mbarrier.arrive.noinc). full[s]: stage s holds the next step's Q, dO, LSE, D (one arrive.expect_tx,
/// then the TMA loads' bytes).
/// empty[s]: every consumer thread is done with stage s (kConsumerThreads arrivals).
template <int kStages>
struct Sm90BwdBarriers {
  uint64_t kv_full;
  uint64_t full[kStages];
  uint64_t empty[kStages];
};

template <class Element_, int kD_, int kDv_>
struct Sm90BwdTraits {
  using Element = Element_;
  using Base = BwdTraits<Element, kD_, kDv_>;
  static constexpr int kD = kD_, kDv = kDv_;
  static constexpr int kBlockM = Base::kBlockM;  // query rows per step
  static constexpr int kBlockN = Base::kBlockN;  // keys per CTA
  // Warp roles: warpgroup 0 = warps 0, 2, 3 load (K, V by cp.async; thread 0 the steps' TMA loads), warp 1 adds
  // dQ into the workspace (bulk reductions; the deterministic mode's turns); warpgroups 1-2 = the consumers.
  static constexpr int kLoaders = 3, kLoaderThreads = 32 * kLoaders, kWriterWarp = 1;
  static constexpr int kConsumerThreads = 256;
  static constexpr int kThreads = 128 + kConsumerThreads;
  // setmaxnreg only moves registers within the CTA's launch allocation (kThreads x 168: 64 K / 384 rounded down
  // to 8); claiming more than the producer released blocks the consumers forever.
  static constexpr int kLoaderRegs = 24, kConsumerRegs = 240;
  static_assert(128 * kLoaderRegs + kConsumerThreads * kConsumerRegs <= kThreads * (65536 / kThreads / 8 * 8),
                "setmaxnreg within the launch allocation");
  static constexpr int kStages = 2;  // Q / dO / LSE / D of the next step load during this one
  static_assert(kBlockM == 64 && kBlockN == 128 && Base::kThreads == kConsumerThreads,
                "the sm_90a backward reuses a 64 x 128, 8-warp row of the sm_80 table");
  // Named barriers (0 is __syncthreads): the consumers' dS^T barrier (kD = 64: one per warpgroup, 4 + w); the
  // dQ buffer's hand-over to the writer warp (full) and back (empty), consumers + writer.
  static constexpr int kDsBarrier = 1, kDqFullBarrier = 2, kDqEmptyBarrier = 3, kDsHalfBarrier0 = 4;
  static constexpr int kDqHandoffThreads = kConsumerThreads + 32;

  // Shared memory, every 16-bit tile 128-byte swizzled (SwizzledTile), boxes 1024-byte aligned:
  //   K (kBlockN, kD) | V (kBlockN, kDv) | dS^T (kBlockN, kBlockM) x 2 | stage s: Q (kBlockM, kD), dO (kBlockM,
  //   kDv) | stage s: LSE * log2e (kBlockM) f32, D (kBlockM) f32 | dQ (kBlockM, kD + 8) f32 x kDqBuffers | mbarriers
  // dS^T is double-buffered: without a CTA-wide barrier per step a warpgroup may write the next step's dS^T
  // while the other still reads this one in its dQ GEMM.
  using KTile = SwizzledTile<kBlockN, kD>;
  using VTile = SwizzledTile<kBlockN, kDv>;
  using DsTile = SwizzledTile<kBlockN, kBlockM>;  // dS^T of one step: rows = keys, 64 query columns (one box)
  using QTile = SwizzledTile<kBlockM, kD>;
  using DoTile = SwizzledTile<kBlockM, kDv>;
  static constexpr int kKOffset = 0;
  static constexpr int kVOffset = kKOffset + KTile::kBytes;
  static constexpr int kDsOffset = kVOffset + VTile::kBytes;  // + (step % 2) * DsTile::kBytes
  static constexpr int kStage0 = kDsOffset + 2 * DsTile::kBytes;
  static constexpr int kStageBytes = QTile::kBytes + DoTile::kBytes;
  static constexpr int kQOffset = 0;                     // within a stage
  static constexpr int kDoOffset = QTile::kBytes;        // within a stage
  static constexpr int kRowsOffset = kStage0 + kStages * kStageBytes;  // + stage * kRowsBytes
  static constexpr int kRowsBytes = 2 * 4 * kBlockM;     // LSE * log2e, then D
  // dQ of one step. kD = 128: warpgroup w computes columns [64w, 64w + 64) over all 128 keys (needs both halves
  // of dS^T). kD = 64 (kDqSplitKeys): each warpgroup computes all kD columns over its own 64 keys, and both
  // partial sums are reduced into the workspace (twice the reduction traffic; kD / 2 = 32 columns would need an
  // MN-major operand starting mid swizzle atom).
  static constexpr bool kDqSplitKeys = kD == 64;
  static constexpr int kDqCols = kDqSplitKeys ? kD : kD / 2;   // per warpgroup
  static constexpr int kDqKeys = kDqSplitKeys ? 64 : kBlockN;  // the GEMM's depth
  static constexpr int kDqBuffers = kDqSplitKeys ? 2 : 1;
  // f32 staging for the bulk reduction: (kBlockM, kD) unpadded, the layout of the workspace block, so that one
  // bulk reduction adds the whole buffer (one request per step: a reduction per row from one warp took ~5 us per
  // step, log step 7); one buffer per partial sum.
  static constexpr int kDqRowFloats = kD;
  static constexpr int kDqBufferBytes = kBlockM * kDqRowFloats * 4;
  static constexpr int kDqOffset = kRowsOffset + kStages * kRowsBytes;
  static constexpr int kBarrierOffset = kDqOffset + kDqBuffers * kDqBufferBytes;
  static constexpr int kSmemBytes = kBarrierOffset + static_cast<int>(sizeof(Sm90BwdBarriers<kStages>));
  static_assert(KTile::kBytes % 1024 == 0 && VTile::kBytes % 1024 == 0 && DsTile::kBytes % 1024 == 0 &&
                    QTile::kBytes % 1024 == 0 && DoTile::kBytes % 1024 == 0,
                "swizzled boxes stay 1024-byte aligned");
  static_assert(kBarrierOffset % 8 == 0, "mbarriers are 8-byte aligned");
  static_assert(kSmemBytes <= 227 * 1024, "one CTA per SM on the H100");

  // Register tiles of one consumer warp (warp q of consumer warpgroup w: keys 64w + 16q .. + 16).
  using SAcc = typename Base::SAcc;  // (16 keys, kBlockM rows) f32: S^T -> P^T, dP^T -> dS^T
  static_assert(SAcc::kM == 1 && SAcc::kN == kBlockM / 8, "S^T of a warp is the wgmma m64 n64 layout");
  using DkAcc = AccTile<1, kD / 8>;   // (16 keys, kD) f32 dK, summed over every step
  using DvAcc = AccTile<1, kDv / 8>;  // (16 keys, kDv) f32 dV
  using DqAcc = AccTile<1, kDqCols / 8>;  // (16 rows, kDqCols) f32 per warp: warp q of a warpgroup rows 16q..
  static_assert(kD == 64 || kD == 128, "dQ split: kD / 2 = 64 columns per warpgroup, or all 64 over its keys");
};

}  // namespace omniattn::detail::cuda
