#pragma once
// Tuning table of the sm_80 backward kernel: one row per supported (head dim, value head dim).
// Host code (can_run, dispatch, launch geometry, workspace sizes) and the kernels read the same table.
//
// One CTA owns one KV tile of block_n keys of one KV head and loops over every query tile (block_m rows)
// of every query head of its group; per step five warp GEMMs run on tiles in shared memory:
//   S^T = K Q^T,  dP^T = V dO^T        (block_n, block_m)   warp grid sdp_warps_n x (warps / sdp_warps_n)
//   dV += P^T dO, dK += dS^T Q         (block_n, dv / d)    warp grid dkv_warps_n x (warps / dkv_warps_n)
//   dQ  = dS K                          (block_m, d)         warp grid dq_warps_m  x (warps / dq_warps_m)
// P^T and dS^T pass through shared memory (16-bit) between the first and the last three.
//
// Per-thread f32 registers: dK + dV accumulators block_n * (d + dv) / threads (live for the whole CTA),
// S^T + dP^T 2 * block_n * block_m / threads, dQ block_m * d / threads (after S^T / dP^T are dead).
// Shared memory: stages x (Q + dO + LSE + D) + K + V + P^T + dS^T, rows padded by 16 bytes.
// The H100 gives a CTA up to 227 KB, the A100 163 KB (can_run checks the device's limit).
#include <cstdint>

namespace omniattn::detail::cuda {

struct BwdTuning {
  int d = 0;                // head dim of Q and K
  int dv = 0;               // head dim of V and O
  int block_m = 0;          // query rows per step (one Q / dO tile)
  int block_n = 0;          // keys per CTA (one K / V tile)
  int warps = 0;            // warps per CTA
  int min_ctas_per_sm = 0;  // __launch_bounds__ occupancy target
  int stages = 0;           // Q / dO buffers: 2 = the next step's tiles load during this step; 1 = load, then compute
  int sdp_warps_n = 0;      // S^T, dP^T: warps along the keys (the others along the query rows)
  int dkv_warps_n = 0;      // dK, dV: warps along the keys (the others along the head dim)
  int dq_warps_m = 0;       // dQ: warps along the query rows (the others along the head dim)

  constexpr int threads() const { return 32 * warps; }
  constexpr int64_t smem_bytes() const {
    const int64_t q_stage = 2LL * block_m * ((d + 8) + (dv + 8)) + 2LL * 4 * block_m;  // Q, dO, LSE, D
    return stages * q_stage + 2LL * block_n * ((d + 8) + (dv + 8)) + 2LL * 2 * block_n * (block_m + 8);
  }
};

// Why these shapes (FlashAttention-2's sm80 backward tiles, checked against the budgets above):
//  - d <= 128: 64 x 128 (rows x keys), 8 warps: dK + dV = 128 registers at d = 128, S^T + dP^T 64, dQ 32;
//    two Q/dO stages (173 KB at d = 128: one CTA per SM on the H100).
//  - d >= 192: 64 x 64, 8 warps: dK + dV = 128 registers at d = 256; one stage (150 KB at d = 256, fits the
//    A100 too).
// clang-format off
inline constexpr BwdTuning kBwdTuningTable[] = {
    // d,  dv, block_m, block_n, warps, min_ctas, stages, sdp_warps_n, dkv_warps_n, dq_warps_m
    {  64,  64,   64,     128,     8,      1,       2,        8,           8,           4},
    {  96,  96,   64,     128,     8,      1,       2,        8,           4,           4},
    { 128, 128,   64,     128,     8,      1,       2,        8,           4,           4},
    { 192, 128,   64,      64,     8,      1,       1,        4,           4,           4},
    { 192, 192,   64,      64,     8,      1,       1,        4,           4,           4},
    { 256, 256,   64,      64,     8,      1,       1,        4,           4,           4},
};
// clang-format on

/// The row for (d, dv), or a row of zeros when the pair is not supported.
constexpr BwdTuning bwd_tuning(int d, int dv) {
  for (const BwdTuning& t : kBwdTuningTable)
    if (t.d == d && t.dv == dv) return t;
  return BwdTuning{};
}

constexpr bool bwd_tuning_is_valid(const BwdTuning& t) {
  const int threads = t.threads();
  const bool grids = t.warps % t.sdp_warps_n == 0 && t.warps % t.dkv_warps_n == 0 && t.warps % t.dq_warps_m == 0;
  if (!(t.d > 0 && t.d % 16 == 0 && t.dv % 16 == 0 && t.warps > 0 && grids && (t.stages == 1 || t.stages == 2)))
    return false;
  const int sdp_m = t.warps / t.sdp_warps_n, dkv_d = t.warps / t.dkv_warps_n, dq_d = t.warps / t.dq_warps_m;
  return
      // every warp tile is whole m16 blocks (rows) and n16 pairs (columns)
      t.block_n % (16 * t.sdp_warps_n) == 0 && t.block_m % (16 * sdp_m) == 0 &&
      t.block_n % (16 * t.dkv_warps_n) == 0 && t.d % (16 * dkv_d) == 0 && t.dv % (16 * dkv_d) == 0 &&
      t.block_m % (16 * t.dq_warps_m) == 0 && t.d % (16 * dq_d) == 0 &&
      // every thread copies the same number of 16-byte chunks of each tile; LSE / D rows are whole chunks
      (t.block_m * t.d / 8) % threads == 0 && (t.block_m * t.dv / 8) % threads == 0 &&
      (t.block_n * t.d / 8) % threads == 0 && (t.block_n * t.dv / 8) % threads == 0 && t.block_m % 4 == 0 &&
      t.block_m / 4 <= threads &&
      // the preprocess / postprocess kernels use the same CTA shape
      (t.block_m * t.d / 8) % threads == 0 &&
      t.min_ctas_per_sm >= 1 && t.smem_bytes() <= 227 * 1024;
}

constexpr bool all_bwd_tunings_valid() {
  for (const BwdTuning& t : kBwdTuningTable)
    if (!bwd_tuning_is_valid(t)) return false;
  return true;
}
static_assert(all_bwd_tunings_valid(), "a row of kBwdTuningTable breaks a tiling or budget rule");

}  // namespace omniattn::detail::cuda
