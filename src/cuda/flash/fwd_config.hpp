#pragma once
// Tuning table of the sm_80 forward kernel: one row per supported (head dim, value head dim).
// Host code (can_run, the dispatch, launch geometry) and the kernels read the same table, so a head dim is
// supported exactly when it has a row here and an instantiation in fwd_instantiations_d*.cu.
//
// Per-thread register budget per warp of kWarpRows = block_m / warps query rows (f32 accumulators):
//   O: kWarpRows * dv / 32,  S: kWarpRows * block_n / 32,  plus fragments and addresses.
// Shared memory: Q (block_m rows) + K + V (block_n rows each), rows padded by 16 bytes (smem_tile.cuh).
// The H100 has 228 KB of shared memory per SM (227 KB per CTA, 1 KB reserved per CTA), the A100 164 KB.
#include <cstdint>

namespace omniattn::detail::cuda {

struct FwdTuning {
  int d = 0;                // head dim of Q and K
  int dv = 0;               // head dim of V and O
  int block_m = 0;          // query rows per CTA (one Q tile)
  int block_n = 0;          // keys per KV tile (one step of the mainloop)
  int warps = 0;            // warps per CTA; each owns block_m / warps consecutive query rows
  int min_ctas_per_sm = 0;  // __launch_bounds__ occupancy target: caps registers at 65536 / (32*warps*this)
  int stages = 0;           // K/V buffers: 2 = prefetch the next tile a whole step ahead, one barrier per
                            // step; 1 = FlashAttention-2's schedule (K and V alternate in one buffer each)

  constexpr int threads() const { return 32 * warps; }
  constexpr int warp_rows() const { return block_m / warps; }
  constexpr int64_t smem_bytes() const { return 2LL * (block_m * (d + 8) + stages * block_n * (d + 8 + dv + 8)); }
};

// Why these shapes (FlashAttention-2's sm80 tiles, checked against the budgets above):
//  - d <= 128: 128 x 64 tiles, 4 warps of 32 rows: K/V shared-memory reads are amortized over 32 rows per
//    warp (ldmatrix bandwidth is the limit of mma.sync attention), O + S = 192 registers at d = 128, two
//    CTAs (8 warps) per SM. Two K/V stages (104 KB at d = 128) still fit two CTAs per SM on the H100
//    (the A100's 164 KB then holds one).
//  - d >= 192: 32 rows of O no longer fit in registers (d = 256: 256 f32), so warps own 16 rows: 64 x 64
//    tiles, 4 warps, two CTAs per SM on the H100 (99 KB of shared memory each at d = 256), which leaves no
//    room for a second K/V stage.
// clang-format off
inline constexpr FwdTuning kFwdTuningTable[] = {
    // d,  dv,  block_m, block_n, warps, min_ctas, stages
    {  64,  64,   128,     64,     4,      3,       2},
    {  96,  96,   128,     64,     4,      2,       2},
    { 128, 128,   128,     64,     4,      2,       2},
    { 192, 128,    64,     64,     4,      2,       1},
    { 192, 192,    64,     64,     4,      2,       1},
    { 256, 256,    64,     64,     4,      2,       1},
};
// clang-format on

/// The row for (d, dv), or a row of zeros when the pair is not supported.
constexpr FwdTuning fwd_tuning(int d, int dv) {
  for (const FwdTuning& t : kFwdTuningTable)
    if (t.d == d && t.dv == dv) return t;
  return FwdTuning{};
}

constexpr bool fwd_tuning_is_valid(const FwdTuning& t) {
  return t.d > 0 && (t.stages == 1 || t.stages == 2) && t.d % 16 == 0 && t.dv % 16 == 0 && t.warps > 0 &&
         t.block_m % (16 * t.warps) == 0 && t.block_n % 16 == 0 && t.min_ctas_per_sm >= 1 &&
         t.smem_bytes() <= 227 * 1024 && t.dv <= t.d &&  // the O staging tile reuses Q's shared memory
         // every thread copies the same number of 16-byte chunks of each tile
         (t.block_m * t.d / 8) % t.threads() == 0 && (t.block_n * t.d / 8) % t.threads() == 0 &&
         (t.block_n * t.dv / 8) % t.threads() == 0 && (t.warp_rows() * t.dv / 8) % 32 == 0;
}

constexpr bool all_fwd_tunings_valid() {
  for (const FwdTuning& t : kFwdTuningTable)
    if (!fwd_tuning_is_valid(t)) return false;
  return true;
}
static_assert(all_fwd_tunings_valid(), "a row of kFwdTuningTable breaks a tiling or budget rule");

}  // namespace omniattn::detail::cuda
