#pragma once
// Register tiles of one warp and the two warp-level GEMMs of attention on them.
//
// AccTile<kM, kN> is a (kM*16, kN*8) f32 tile held as kM x kN m16n8 accumulator fragments: element
// v[m][n][e] is row 16m + g + 8*(e/2), column 8n + 2t + e%2 (g = lane/4, t = lane%4). Each thread thus
// owns 2*kM rows ("row slots" r = 2m + e/2) and 2*kN columns of each; a row lives in the 4 lanes of a quad.
#include <cstdint>

#include "cuda/common/ptx.cuh"

namespace omniattn::detail::cuda {

template <int kM_, int kN_>
struct AccTile {
  static constexpr int kM = kM_;  // m16 blocks (rows / 16)
  static constexpr int kN = kN_;  // n8 blocks (columns / 8)
  static constexpr int kRowSlots = 2 * kM;
  float v[kM][kN][4];

  __device__ __forceinline__ void fill(float x) {
#pragma unroll
    for (int m = 0; m < kM; ++m)
#pragma unroll
      for (int n = 0; n < kN; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) v[m][n][e] = x;
  }
  /// Multiplies each row slot r by factor[r].
  __device__ __forceinline__ void scale_rows(const float (&factor)[kRowSlots]) {
#pragma unroll
    for (int m = 0; m < kM; ++m)
#pragma unroll
      for (int n = 0; n < kN; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) v[m][n][e] *= factor[2 * m + e / 2];
  }
  /// Row (within the warp tile) of row slot r for lane `lane`.
  static __device__ __forceinline__ int row_of_slot(int r, int lane) {
    return 16 * (r / 2) + (lane >> 2) + 8 * (r % 2);
  }
  /// Column (within the tile) of element (n, e) for lane `lane`.
  static __device__ __forceinline__ int col_of(int n, int e, int lane) { return 8 * n + 2 * (lane & 3) + (e & 1); }
};

/// A one-row-block accumulator (16 rows, kN*8 columns) as kN/2 k16 A fragments of a following GEMM (wgmma RS,
/// mma.sync): the fragments of two adjacent n8 blocks are one k16 A fragment, packed to Element.
template <class Element, int kN>
__device__ __forceinline__ void acc_to_a_fragments(const AccTile<1, kN>& s, uint32_t (&a)[kN / 2][4]) {
#pragma unroll
  for (int kk = 0; kk < kN / 2; ++kk) {
    a[kk][0] = pack_pair<Element>(s.v[0][2 * kk][0], s.v[0][2 * kk][1]);
    a[kk][1] = pack_pair<Element>(s.v[0][2 * kk][2], s.v[0][2 * kk][3]);
    a[kk][2] = pack_pair<Element>(s.v[0][2 * kk + 1][0], s.v[0][2 * kk + 1][1]);
    a[kk][3] = pack_pair<Element>(s.v[0][2 * kk + 1][2], s.v[0][2 * kk + 1][3]);
  }
}
/// Keeps A fragments' registers untouched until an asynchronous GEMM reading them has completed.
template <int kK>
__device__ __forceinline__ void hold_fragments(uint32_t (&a)[kK][4]) {
#pragma unroll
  for (int kk = 0; kk < kK; ++kk)
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(a[kk][i])::"memory");
}

/// S += Q K^T for one warp: Q rows from a shared (rows, kDepth) tile, K rows from a shared (keys, kDepth)
/// tile. `q_lane` / `k_lane` are the tiles' shared addresses plus the lane offsets (a_lane_offset at the
/// warp's first row; b_lane_offset).
/// S: (kM*16, kN*8) f32; Q: (kM*16, kDepth); K: (kN*8, kDepth).
template <class Element, class QTile, class KTile, int kDepth, int kM, int kN>
__device__ __forceinline__ void warp_gemm_qk(AccTile<kM, kN>& s, uint32_t q_lane, uint32_t k_lane) {
  static_assert(kN % 2 == 0, "K fragments come in pairs of n8 blocks");
#pragma unroll
  for (int ks = 0; ks < kDepth / 16; ++ks) {
    uint32_t a[kM][4];  // (kM*16, 16) slice of Q
#pragma unroll
    for (int m = 0; m < kM; ++m) ldmatrix_x4(a[m], q_lane + QTile::offset(16 * m, 16 * ks));
#pragma unroll
    for (int n2 = 0; n2 < kN / 2; ++n2) {
      uint32_t b[4];  // (16 keys, 16) slice of K: two n8 B fragments
      ldmatrix_x4(b, k_lane + KTile::offset(16 * n2, 16 * ks));
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        Mma16816<Element>::run(s.v[m][2 * n2], a[m], b[0], b[1]);
        Mma16816<Element>::run(s.v[m][2 * n2 + 1], a[m], b[2], b[3]);
      }
    }
  }
}

/// O += P V for one warp: P = the probabilities in S's registers (rounded to Element: the accumulator
/// layout of two adjacent n8 blocks is exactly the A-fragment layout of one k16 block), V from a shared
/// (keys, kDv) tile read transposed. `v_lane` = tile address + bt_lane_offset.
/// O: (kM*16, kDv = kNo*8) f32; P: (kM*16, kN*8); V: (kN*8, kDv).
template <class Element, class VTile, int kM, int kN, int kNo>
__device__ __forceinline__ void warp_gemm_pv(AccTile<kM, kNo>& o, const AccTile<kM, kN>& p, uint32_t v_lane) {
  constexpr int kDv = kNo * 8;
  static_assert(kN % 2 == 0 && kDv % 16 == 0, "P and V come in k16 / n16 blocks");
#pragma unroll
  for (int kk = 0; kk < kN / 2; ++kk) {
    uint32_t a[kM][4];  // (kM*16, 16 keys) slice of P
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      a[m][0] = pack_pair<Element>(p.v[m][2 * kk][0], p.v[m][2 * kk][1]);
      a[m][1] = pack_pair<Element>(p.v[m][2 * kk][2], p.v[m][2 * kk][3]);
      a[m][2] = pack_pair<Element>(p.v[m][2 * kk + 1][0], p.v[m][2 * kk + 1][1]);
      a[m][3] = pack_pair<Element>(p.v[m][2 * kk + 1][2], p.v[m][2 * kk + 1][3]);
    }
#pragma unroll
    for (int n2 = 0; n2 < kDv / 16; ++n2) {
      uint32_t b[4];  // (16 keys, 16 value columns) slice of V: two n8 B fragments
      ldmatrix_x4_trans(b, v_lane + VTile::offset(16 * kk, 16 * n2));
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        Mma16816<Element>::run(o.v[m][2 * n2], a[m], b[0], b[1]);
        Mma16816<Element>::run(o.v[m][2 * n2 + 1], a[m], b[2], b[3]);
      }
    }
  }
}

}  // namespace omniattn::detail::cuda
