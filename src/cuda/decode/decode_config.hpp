#pragma once
// Tuning table of the CUDA decode kernel: one row per head dim (D = Dv). Host (launch, can_run) and kernel read
// the same rows.
//
// Decode reads every K/V byte once and computes little on it: the kernel is a memory pipe. What matters is the
// bytes in flight per SM (latency x bandwidth: ~1 us x 4.8 TB/s / 132 SMs ~ 36 KB), so the stages are as deep as
// shared memory allows at two CTAs per SM where possible:
//   shared memory = 2 Q buffers (2 x rows_per_cta x (D + 8) x 2) + stages x 2 (K, V) x block_n x (D + 8) x 2 bytes
//   D = 64: 4 stages, 74 KB + Q;  D = 128: 3 stages, 104 KB + Q (two CTAs per SM on the H100/H200: 2 x 110.5 KB);
//   D = 256: 2 stages, 135 KB + Q (one CTA per SM, 135 KB in flight).
// Q is double-buffered and the epilogue's cross-warp merge (4 warps x 16 rows x (D + 4) f32) fits in ONE stage, so
// that the next work item's first tiles can load while an item finishes (decode_cta.cuh).
#include <cstdint>

namespace omniattn::detail::cuda {

struct DecodeTuning {
  int d = 0;        // head dim of Q, K, V
  int block_n = 0;  // keys per tile (one pipeline stage)
  int stages = 0;   // K/V tiles in flight (cp.async groups)

  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  constexpr int64_t kv_stage_bytes() const { return 2LL * 2 * block_n * (d + 8); }
  constexpr int64_t smem_bytes(int rows_per_cta) const {
    return 2LL * 2 * rows_per_cta * (d + 8) + stages * kv_stage_bytes() + 48;  // + flags and mbarriers
  }
  constexpr int64_t merge_bytes() const { return 4LL * kWarps * 16 * (d + 4) + 2 * 4 * kWarps * 16; }
};

// clang-format off
inline constexpr DecodeTuning kDecodeTuningTable[] = {
    // d,  block_n, stages
    {  64,   64,     4},
    { 128,   64,     3},
    { 256,   64,     2},
};
// clang-format on

constexpr DecodeTuning decode_tuning(int d) {
  for (const DecodeTuning& t : kDecodeTuningTable)
    if (t.d == d) return t;
  return DecodeTuning{};
}

constexpr bool decode_tunings_valid() {
  for (const DecodeTuning& t : kDecodeTuningTable) {
    if (t.d % 16 != 0 || t.block_n % 64 != 0 || t.stages < 2) return false;  // 4 key warps x 16 keys
    if (t.stages > 4) return false;                                          // 4 mbarriers (decode_traits.cuh)
    if (t.merge_bytes() > t.kv_stage_bytes()) return false;
    if (t.smem_bytes(64) > 227 * 1024) return false;
    if ((t.block_n * t.d / 8) % DecodeTuning::kThreads != 0) return false;  // equal 16-byte chunks per thread
  }
  return true;
}
static_assert(decode_tunings_valid(), "a row of kDecodeTuningTable breaks a tiling or budget rule");

/// Stream-K runs no shorter than this many tiles (a shorter run's partial costs more than the split saves).
inline constexpr int kDecodeMinTilesPerCta = 4;

}  // namespace omniattn::detail::cuda
