#pragma once
// Compile-time shape of one backward instantiation, derived from its tuning row (bwd_config.hpp).
#include "cuda/bwd/bwd_config.hpp"
#include "cuda/bwd/bwd_gemm.cuh"
#include "cuda/common/fragments.cuh"
#include "cuda/common/smem_tile.cuh"

namespace omniattn::detail::cuda {

template <class Element_, int kD_, int kDv_>
struct BwdTraits {
  using Element = Element_;
  static constexpr int kD = kD_;
  static constexpr int kDv = kDv_;
  static constexpr BwdTuning kTune = bwd_tuning(kD, kDv);
  static_assert(kTune.d == kD && kTune.dv == kDv, "no row of kBwdTuningTable for this (D, Dv)");

  static constexpr int kBlockM = kTune.block_m;
  static constexpr int kBlockN = kTune.block_n;
  static constexpr int kWarps = kTune.warps;
  static constexpr int kThreads = kTune.threads();
  static constexpr int kMinCtasPerSm = kTune.min_ctas_per_sm;
  static constexpr int kStages = kTune.stages;

  // Warp grids (see BwdTuning). S^T / dP^T: (kSdpKeys, kSdpRows) per warp.
  static constexpr int kSdpWarpsN = kTune.sdp_warps_n;
  static constexpr int kSdpKeys = kBlockN / kSdpWarpsN;
  static constexpr int kSdpRows = kBlockM / (kWarps / kSdpWarpsN);
  // dK / dV: (kDkvKeys, kDkCols) and (kDkvKeys, kDvCols) per warp.
  static constexpr int kDkvWarpsN = kTune.dkv_warps_n;
  static constexpr int kDkvKeys = kBlockN / kDkvWarpsN;
  static constexpr int kDkCols = kD / (kWarps / kDkvWarpsN);
  static constexpr int kDvCols = kDv / (kWarps / kDkvWarpsN);
  // dQ: (kDqRows, kDqCols) per warp.
  static constexpr int kDqWarpsM = kTune.dq_warps_m;
  static constexpr int kDqRows = kBlockM / kDqWarpsM;
  static constexpr int kDqCols = kD / (kWarps / kDqWarpsM);

  using QTile = SmemTile<kBlockM, kD>;        // (kBlockM, kD) queries of one step
  using DoTile = SmemTile<kBlockM, kDv>;      // (kBlockM, kDv) output gradients of one step
  using KTile = SmemTile<kBlockN, kD>;        // (kBlockN, kD) the CTA's keys
  using VTile = SmemTile<kBlockN, kDv>;       // (kBlockN, kDv) the CTA's values
  using PTile = SmemTile<kBlockN, kBlockM>;   // (kBlockN, kBlockM) P^T or dS^T of one step, 16-bit

  using SAcc = AccTile<kSdpKeys / 16, kSdpRows / 8>;  // (kSdpKeys, kSdpRows) f32: S^T, P^T, dP^T, dS^T
  using DkAcc = AccTile<kDkvKeys / 16, kDkCols / 8>;  // (kDkvKeys, kDkCols) f32 dK accumulator
  using DvAcc = AccTile<kDkvKeys / 16, kDvCols / 8>;  // (kDkvKeys, kDvCols) f32 dV accumulator
  using DqAcc = AccTile<kDqRows / 16, kDqCols / 8>;   // (kDqRows, kDqCols) f32 dQ of one step

  // Dynamic shared memory (byte offsets): Q | dO | LSE*log2e | D  (x kStages) | K | V | P^T | dS^T.
  static constexpr int kStageBytes = QTile::kBytes + DoTile::kBytes + 2 * 4 * kBlockM;
  static constexpr int kQOffset = 0;                                 // + stage * kStageBytes
  static constexpr int kDoOffset = kQOffset + QTile::kBytes;         // + stage * kStageBytes
  static constexpr int kLseOffset = kDoOffset + DoTile::kBytes;      // (kBlockM) f32, + stage * kStageBytes
  static constexpr int kDsumOffset = kLseOffset + 4 * kBlockM;       // (kBlockM) f32, + stage * kStageBytes
  static constexpr int kKOffset = kStages * kStageBytes;
  static constexpr int kVOffset = kKOffset + KTile::kBytes;
  static constexpr int kPOffset = kVOffset + VTile::kBytes;
  static constexpr int kDsOffset = kPOffset + PTile::kBytes;
  static constexpr int kSmemBytes = kDsOffset + PTile::kBytes;
  static_assert(kSmemBytes == kTune.smem_bytes(), "shared memory layout and tuning table disagree");
  static_assert(kStageBytes % 16 == 0 && QTile::kBytes % 16 == 0 && DoTile::kBytes % 16 == 0,
                "cp.async destinations stay 16-byte aligned");
  static_assert(kSdpKeys % 16 == 0 && kSdpRows % 16 == 0 && kDkvKeys % 16 == 0 && kDkCols % 16 == 0 &&
                    kDvCols % 16 == 0 && kDqRows % 16 == 0 && kDqCols % 16 == 0,
                "warp tiles are whole 16x16 blocks");

  // Operands of the five GEMMs.
  using KasA = SmemOperand<KTile, false>;     // S^T = K Q^T
  using QasB = SmemOperand<QTile, false>;
  using VasA = SmemOperand<VTile, false>;     // dP^T = V dO^T
  using DoasB = SmemOperand<DoTile, false>;
  using PasA = SmemOperand<PTile, false>;     // dV += P^T dO, dK += dS^T Q
  using DoasBt = SmemOperand<DoTile, true>;
  using QasBt = SmemOperand<QTile, true>;
  using DsasAt = SmemOperand<PTile, true>;    // dQ = dS K
  using KasBt = SmemOperand<KTile, true>;
};

}  // namespace omniattn::detail::cuda
