#pragma once
// Compile-time shape of one forward kernel instantiation, derived from its tuning row (fwd_config.hpp).
#include "cuda/common/fragments.cuh"
#include "cuda/common/smem_tile.cuh"
#include "cuda/flash/fwd_config.hpp"

namespace omniattn::detail::cuda {

template <class Element_, int kD_, int kDv_>
struct FwdTraits {
  using Element = Element_;
  static constexpr int kD = kD_;
  static constexpr int kDv = kDv_;
  static constexpr FwdTuning kTune = fwd_tuning(kD, kDv);
  static_assert(kTune.d == kD && kTune.dv == kDv, "no row of kFwdTuningTable for this (D, Dv)");

  static constexpr int kBlockM = kTune.block_m;
  static constexpr int kBlockN = kTune.block_n;
  static constexpr int kWarps = kTune.warps;
  static constexpr int kThreads = kTune.threads();
  static constexpr int kMinCtasPerSm = kTune.min_ctas_per_sm;
  static constexpr int kWarpRows = kTune.warp_rows();  // query rows owned by one warp
  static constexpr int kMBlocks = kWarpRows / 16;      // m16 blocks per warp
  static constexpr int kRowSlots = 2 * kMBlocks;       // rows held per thread
  static constexpr int kStages = kTune.stages;         // K/V buffers (see FwdTuning::stages)

  using QTile = SmemTile<kBlockM, kD>;          // (kBlockM, kD) queries
  using KTile = SmemTile<kBlockN, kD>;          // (kBlockN, kD) keys
  using VTile = SmemTile<kBlockN, kDv>;         // (kBlockN, kDv) values
  using OTile = SmemTile<kBlockM, kDv>;         // (kBlockM, kDv) output staging, in Q's place after the mainloop
  using SAcc = AccTile<kMBlocks, kBlockN / 8>;  // (kWarpRows, kBlockN) f32 scores / probabilities, per warp
  using OAcc = AccTile<kMBlocks, kDv / 8>;      // (kWarpRows, kDv) f32 output accumulator, per warp

  // Dynamic shared memory: Q | K stage 0 .. | V stage 0 .. (byte offsets).
  static constexpr int kQOffset = 0;
  static constexpr int kKOffset = kQOffset + QTile::kBytes;
  static constexpr int kVOffset = kKOffset + kStages * KTile::kBytes;
  static constexpr int kSmemBytes = kVOffset + kStages * VTile::kBytes;
  static_assert(kSmemBytes == kTune.smem_bytes(), "shared memory layout and tuning table disagree");
  static_assert(OTile::kBytes <= QTile::kBytes, "output staging must fit in the Q tile");
  static_assert(kWarpRows % 16 == 0, "a warp owns whole m16 blocks");
};

}  // namespace omniattn::detail::cuda
