#pragma once
// The warp GEMM of the backward: C += A B with both operands in shared memory, each either way round.
//   A (rows x depth): stored [row][depth] (kATrans = false: K for S^T = K Q^T, P^T for dV += P^T dO)
//                     or [depth][row]      (kATrans = true: dS^T read as dS for dQ = dS K)
//   B (depth x cols): stored [col][depth]  (kBTrans = false: Q for S^T = K Q^T)
//                     or [depth][col]      (kBTrans = true: dO for dV += P^T dO, K for dQ = dS K)
// Transposed operands come through ldmatrix.trans. Lane offsets (smem_tile.cuh): A plain a_lane_offset;
// A transposed: matrix i = lane/8 must be (rows (i%2)*8.., depth (i/2)*8..), i.e. stored rows (i/2)*8 + lane%8
// at column (i%2)*8 -- the same addresses as b_lane_offset; B plain b_lane_offset; B transposed bt_lane_offset.
#include <cstdint>

#include "cuda/common/fragments.cuh"
#include "cuda/common/smem_tile.cuh"

namespace omniattn::detail::cuda {

/// One operand tile in shared memory and how it is read.
template <class Tile_, bool kTrans_>
struct SmemOperand {
  using Tile = Tile_;
  static constexpr bool kTrans = kTrans_;

  /// Lane address offset for an A operand / for a B operand.
  static __device__ __forceinline__ uint32_t a_lane(int lane) {
    return kTrans ? Tile::b_lane_offset(lane) : Tile::a_lane_offset(lane);
  }
  static __device__ __forceinline__ uint32_t b_lane(int lane) {
    return kTrans ? Tile::bt_lane_offset(lane) : Tile::b_lane_offset(lane);
  }
  /// Byte offset of the 16x16 block at (outer index `outer` = row of A / column of B, depth `depth`).
  static constexpr __host__ __device__ uint32_t block(int outer, int depth) {
    return kTrans ? Tile::offset(depth, outer) : Tile::offset(outer, depth);
  }
  static __device__ __forceinline__ void load(uint32_t (&r)[4], uint32_t address) {
    if constexpr (kTrans)
      ldmatrix_x4_trans(r, address);
    else
      ldmatrix_x4(r, address);
  }
};

/// C (kM*16, kN*8) += A (kM*16, kDepth) B (kDepth, kN*8) for one warp. `a` / `b` are the operands' shared
/// addresses at the warp's first row / column (SmemOperand::block(first, 0)) plus the lane offsets.
template <class Element, class A, class B, int kDepth, int kM, int kN>
__device__ __forceinline__ void warp_gemm_smem(AccTile<kM, kN>& c, uint32_t a, uint32_t b) {
  static_assert(kN % 2 == 0 && kDepth % 16 == 0, "B fragments come in n16 x k16 blocks");
#pragma unroll
  for (int ks = 0; ks < kDepth / 16; ++ks) {
    uint32_t af[kM][4];  // (kM*16, 16) slice of A
#pragma unroll
    for (int m = 0; m < kM; ++m) A::load(af[m], a + A::block(16 * m, 16 * ks));
#pragma unroll
    for (int n2 = 0; n2 < kN / 2; ++n2) {
      uint32_t bf[4];  // (16, 16 columns) slice of B: two n8 fragments
      B::load(bf, b + B::block(16 * n2, 16 * ks));
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        Mma16816<Element>::run(c.v[m][2 * n2], af[m], bf[0], bf[1]);
        Mma16816<Element>::run(c.v[m][2 * n2 + 1], af[m], bf[2], bf[3]);
      }
    }
  }
}

}  // namespace omniattn::detail::cuda
