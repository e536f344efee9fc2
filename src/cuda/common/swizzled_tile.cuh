#pragma once
// Shared-memory tiles in the layout wgmma's descriptors read (and TMA's CU_TENSOR_MAP_SWIZZLE_128B writes):
// (kRows, kCols) 16-bit elements as kCols / 64 boxes of (kRows, 64), each row 128 bytes, the 16-byte chunks of
// row r permuted by chunk ^= r % 8. Boxes must start 1024-byte aligned (the permutation is computed from address
// bits). Same interface as SmemTile (offset, kRowBytes, kChunksPerRow), so copy_rows_async fills it with cp.async.
#include <cstdint>

namespace omniattn::detail::cuda {

template <int kRows_, int kCols_>
struct SwizzledTile {
  static constexpr int kRows = kRows_;
  static constexpr int kCols = kCols_;
  static constexpr int kRowBytes = 128;               // one row of one box
  static constexpr int kBoxBytes = kRows * kRowBytes;  // one (kRows, 64) box
  static constexpr int kBytes = kCols / 64 * kBoxBytes;
  static constexpr int kChunksPerRow = kCols / 8;  // 16-byte chunks per row of the whole tile
  static_assert(kCols % 64 == 0, "whole 64-column boxes");
  static_assert(kRows % 8 == 0, "whole 8-row swizzle atoms");

  /// Byte offset of element (row, col).
  static constexpr uint32_t offset(int row, int col) {
    return static_cast<uint32_t>((col / 64) * kBoxBytes + row * kRowBytes + ((((col / 8) ^ row) & 7) << 4) +
                                 (col % 8) * 2);
  }
  /// Row r + kStep is kStep * kRowBytes after row r only when the step keeps the chunk permutation (a multiple
  /// of 8 rows); copy_rows_async then steps its destination by that, otherwise it recomputes the offset.
  template <int kStep>
  static constexpr bool kRowStepLinear = kStep % 8 == 0;
};

}  // namespace omniattn::detail::cuda
