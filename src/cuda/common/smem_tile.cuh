#pragma once
// Shared-memory tiles of 16-bit elements, (kRows, kCols) row-major, each row padded by 16 bytes.
//
// Why padding and not an XOR swizzle: ldmatrix reads 8 rows x 16 bytes per matrix. With a padded row of
// (kCols/8 + 1) 16-byte chunks, an odd number for every head dim used here (64..256 -> 9, 13, 17, 25, 33),
// the 8 rows start in 8 different 16-byte bank groups, so every ldmatrix phase and every 16-byte cp.async
// store is conflict-free. It works for head dims that are not powers of two (96, 192) without special
// cases, at a cost of 16 bytes per row (3% to 11% more shared memory).
//
// The *_lane_offset helpers give each lane's byte offset for one ldmatrix.x4; the per-call part (which
// 16x16 block) is a compile-time byte offset added to it (`offset(row, col)`).
#include <cstdint>

#include "cuda/common/ptx.cuh"

namespace omniattn::detail::cuda {

template <int kRows_, int kCols_>
struct SmemTile {
  static constexpr int kRows = kRows_;
  static constexpr int kCols = kCols_;
  static constexpr int kElementBytes = 2;
  static constexpr int kStride = kCols + 8;  // elements per padded row
  static constexpr int kRowBytes = kStride * kElementBytes;
  static constexpr int kBytes = kRows * kRowBytes;
  static constexpr int kChunksPerRow = kCols / 8;  // 16-byte chunks of data per row
  static_assert(kCols % 16 == 0, "ldmatrix and mma need columns in multiples of 16");
  static_assert(kRows % 16 == 0, "ldmatrix and mma need rows in multiples of 16");
  static_assert((kChunksPerRow + 1) % 2 == 1, "padded rows must span an odd number of 16-byte chunks");
  /// Row r + kStep is kStep * kRowBytes after row r (copy_rows_async steps its destination by that).
  template <int kStep>
  static constexpr bool kRowStepLinear = true;

  /// Byte offset of element (row, col).
  static constexpr __host__ __device__ uint32_t offset(int row, int col) {
    return static_cast<uint32_t>((row * kStride + col) * kElementBytes);
  }

  /// A operand (16x16 block, row-major, rows = M): lane l addresses row l%16, column half l/16.
  /// Registers come back as a[0..3] of the m16n8k16 A fragment.
  static __device__ __forceinline__ uint32_t a_lane_offset(int lane) { return offset(lane & 15, (lane >> 4) * 8); }

  /// B operand from a tile stored [n][k] (keys x head dim: K for S = Q K^T), 16 n x 16 k per ldmatrix.x4:
  /// matrix i = lane/8 covers n rows (i/2)*8.., k columns (i%2)*8... Registers: {b0, b1} of n-block 0,
  /// then {b0, b1} of n-block 1.
  static __device__ __forceinline__ uint32_t b_lane_offset(int lane) {
    return offset(((lane >> 4) << 3) + (lane & 7), ((lane >> 3) & 1) * 8);
  }

  /// B operand from a tile stored [k][n] (keys x value dim: V for O = P V), with ldmatrix.trans,
  /// 16 k x 16 n per call: matrix i covers k rows (i%2)*8.., n columns (i/2)*8...
  /// Registers: {b0, b1} of n-block 0, then {b0, b1} of n-block 1.
  static __device__ __forceinline__ uint32_t bt_lane_offset(int lane) {
    return offset((((lane >> 3) & 1) << 3) + (lane & 7), (lane >> 4) * 8);
  }
};

/// Copies kTile::kRows rows of kTile::kCols elements from global memory into a shared tile with cp.async,
/// all kThreads threads of the CTA taking 16-byte chunks in turn (consecutive threads take consecutive
/// chunks of a row: coalesced). Rows >= valid_rows are zero-filled and not read.
/// `row0` points at row 0; rows are `row_stride` elements apart (any stride, 16-byte aligned).
template <class kTile, int kThreads, class Element>
__device__ __forceinline__ void copy_rows_async(uint32_t smem_tile, const Element* row0, int64_t row_stride,
                                                int valid_rows, int thread) {
  constexpr int kChunksPerRow = kTile::kChunksPerRow;
  constexpr int kPasses = kTile::kRows * kChunksPerRow / kThreads;
  static_assert(kTile::kRows * kChunksPerRow % kThreads == 0, "every thread copies the same number of chunks");
  if constexpr (kThreads % kChunksPerRow == 0) {
    // Each pass moves whole rows and a thread keeps its column: one pointer step per pass, so no per-pass
    // 64-bit offsets stay live across the mainloop.
    constexpr int kRowsPerPass = kThreads / kChunksPerRow;
    const int row = thread / kChunksPerRow, col = (thread % kChunksPerRow) * 8;
    const Element* src = row0 + row * row_stride + col;
    const int64_t step = kRowsPerPass * row_stride;
    const uint32_t dst = smem_tile + kTile::offset(row, col);
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      const bool valid = row + i * kRowsPerPass < valid_rows;
      // A swizzled tile stepped by fewer than 8 rows permutes its chunks anew on every pass.
      const uint32_t to = kTile::template kRowStepLinear<kRowsPerPass>
                              ? dst + i * kRowsPerPass * kTile::kRowBytes
                              : smem_tile + kTile::offset(row + i * kRowsPerPass, col);
      cp_async_16(to, valid ? src : row0, valid);
      src += step;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      const int chunk = thread + i * kThreads;
      const int row = chunk / kChunksPerRow;
      const int col = (chunk % kChunksPerRow) * 8;
      const bool valid = row < valid_rows;
      cp_async_16(smem_tile + kTile::offset(row, col), valid ? row0 + row * row_stride + col : row0, valid);
    }
  }
}

}  // namespace omniattn::detail::cuda
