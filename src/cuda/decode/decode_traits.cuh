#pragma once
// Compile-time shape of one decode CTA: 4 warps over a (rows_per_cta x block_n) score tile.
//   kRowWarps = 1: 16 packed query rows (all query heads of a KV head x Sq tokens, when they fit); the 4 warps
//                  split each K/V tile by keys (16 each) and merge their softmax states at the end.
//   kRowWarps = 4: 64 packed rows, one warp per 16 rows, each warp over all keys of the tile (FA2-style).
// Shared memory: Q buffers 0, 1 (by item parity) | flags | mbarriers | K/V stages (K tile then V tile per stage); an item's
// epilogue and merge stage through the K/V stage of its last tile (decode_cta.cuh).
#include "cuda/common/fragments.cuh"
#include "cuda/common/smem_tile.cuh"
#include "cuda/decode/decode_config.hpp"

namespace omniattn::detail::cuda {

template <class Element_, int kD_, int kRowWarps_>
struct DecodeTraits {
  using Element = Element_;
  static constexpr DecodeTuning kTuning = decode_tuning(kD_);
  static_assert(kTuning.d == kD_, "no tuning row for this head dim");
  static constexpr int kD = kD_;
  static constexpr int kWarps = DecodeTuning::kWarps;
  static constexpr int kThreads = DecodeTuning::kThreads;
  static constexpr int kRowWarps = kRowWarps_;
  static constexpr int kKeyWarps = kWarps / kRowWarps;
  static_assert(kRowWarps * kKeyWarps == kWarps, "row warps x key warps = 4");
  static constexpr int kRows = 16 * kRowWarps;          // packed query rows per CTA
  static constexpr int kBlockN = kTuning.block_n;        // keys per tile
  static constexpr int kWarpKeys = kBlockN / kKeyWarps;  // keys per warp per tile
  static constexpr int kStages = kTuning.stages;
  static_assert(kWarpKeys % 16 == 0, "a warp's key slice is whole k16 blocks");

  using QTile = SmemTile<kRows, kD>;     // (kRows, kD)
  using KTile = SmemTile<kBlockN, kD>;   // (kBlockN, kD)
  using VTile = SmemTile<kBlockN, kD>;   // (kBlockN, kD)
  using SAcc = AccTile<1, kWarpKeys / 8>;  // (16, kWarpKeys) f32 scores per warp
  using OAcc = AccTile<1, kD / 8>;         // (16, kD) f32 output per warp

  static constexpr int kQOffset = 0;                     // buffer b at kQOffset + b * QTile::kBytes
  static constexpr int kFlagOffset = 2 * QTile::kBytes;  // int 0: a bad page id seen; int 1: this CTA merges
  static constexpr int kBarrierOffset = kFlagOffset + 16;  // one mbarrier per stage (bulk copies), 4 at most
  static constexpr int kStageOffset = kBarrierOffset + 32;
  static constexpr int kStageBytes = KTile::kBytes + VTile::kBytes;
  static constexpr int kSmemBytes = kStageOffset + kStages * kStageBytes;
  static_assert(kSmemBytes == kTuning.smem_bytes(kRows), "layout = the tuning table's budget");

  // Epilogue staging (in one stage): per warp (16, kD + 4) f32 O, then per warp 16 maxima and 16 sums.
  static constexpr int kMergeStride = kD + 4;  // floats per staged row (16-byte aligned, fewer bank conflicts)
  static constexpr int kMergeOBytes = kWarps * 16 * kMergeStride * 4;
  static constexpr int kMergeBytes = kMergeOBytes + 2 * kWarps * 16 * 4;
  static_assert(kMergeBytes <= kStageBytes, "the epilogue's staging fits in one K/V stage");
};

}  // namespace omniattn::detail::cuda
