// Tile sizes of the CPU kernels, one table per SIMD target: the kernels read no other constant.
// (Highway per-target header: included once per target by foreach_target.h.)
#if defined(OMNIATTN_CPU_TUNING_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef OMNIATTN_CPU_TUNING_INL_H_
#undef OMNIATTN_CPU_TUNING_INL_H_
#else
#define OMNIATTN_CPU_TUNING_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace omniattn::detail::cpu {
namespace HWY_NAMESPACE {

/// A register tile of the microkernel: kRows broadcast rows × kVecs SIMD vectors of accumulators.
template <size_t kRowsT, size_t kVecsT>
struct TileShape {
  static constexpr size_t kRows = kRowsT;
  static constexpr size_t kVecs = kVecsT;
};

struct Tuning {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  // 32 zmm registers: 24 accumulators + the B vectors + one broadcast. Block sizes measured on Zen 5
  // (docs/cpu.md): 96 x 128 beat 48 x 64, 64 x 64 and 128 x 64 by 2-5% on the 4096-token forward.
  static constexpr size_t kBlockQ = 96;    // forward: queries per task, 6 vectors of 16
  static constexpr size_t kBlockK = 128;   // forward: keys per block
  static constexpr size_t kBackwardBlockQ = 48;  // backward: queries per dQ task / per dK,dV step
  static constexpr size_t kBackwardBlockK = 64;  // backward: keys per dK,dV task / per dQ step
  using ScoreTile = TileShape<8, 3>;       // S^T = K Q^T: 8 keys x 48 queries
  using ValueTile = TileShape<6, 4>;       // O += P V: 6 queries x 64 value dims
  using KeyMajorTile = TileShape<6, 4>;    // backward S = Q K^T, dP = dO V^T (keys in lanes)
  using GradTile = TileShape<6, 4>;        // backward dK, dV, dQ accumulation over the head dim
#elif HWY_TARGET == HWY_AVX2
  // 16 ymm registers: 12 accumulators.
  static constexpr size_t kBlockQ = 48;
  static constexpr size_t kBlockK = 64;
  static constexpr size_t kBackwardBlockQ = 48;
  static constexpr size_t kBackwardBlockK = 64;
  using ScoreTile = TileShape<4, 3>;
  using ValueTile = TileShape<4, 3>;
  using KeyMajorTile = TileShape<4, 3>;
  using GradTile = TileShape<4, 3>;
#else
  static constexpr size_t kBlockQ = 48;
  static constexpr size_t kBlockK = 64;
  static constexpr size_t kBackwardBlockQ = 48;
  static constexpr size_t kBackwardBlockK = 64;
  using ScoreTile = TileShape<4, 4>;
  using ValueTile = TileShape<4, 4>;
  using KeyMajorTile = TileShape<4, 4>;
  using GradTile = TileShape<4, 4>;
#endif
  static_assert(kBlockQ % HWY_LANES(float) == 0 && kBackwardBlockQ % HWY_LANES(float) == 0,
                "query blocks are whole vectors (rows of S^T)");
  static_assert(kBlockK % HWY_LANES(float) == 0 && kBackwardBlockK % HWY_LANES(float) == 0,
                "key blocks are whole vectors (rows of S in backward)");
};

}  // namespace HWY_NAMESPACE
}  // namespace omniattn::detail::cpu
HWY_AFTER_NAMESPACE();

#endif  // OMNIATTN_CPU_TUNING_INL_H_
