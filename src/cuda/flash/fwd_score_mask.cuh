#pragma once
// Scores -> logits (ScoreMod) and the element mask (SequenceMask) on one warp's score fragments, shared by the
// sm_80 and sm_90a forward mainloops. SAcc is the warp's AccTile of scores (kM m16 blocks x kN n8 blocks); the
// tile's rows are packed query rows (FwdParams::pack) starting at w.row0 + warp_row0, its columns keys j0...
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/common/noinline.hpp"
#include "cuda/flash/fwd_scheduler.cuh"

namespace omniattn::detail::cuda {


/// How many of a lane's kCols score columns hold keys below `key`: column c is key col0 + 8 (c / 2) + c % 2
/// (increasing in c), so with t = key - col0 that is 2 (t / 8) + min(t % 8, 2), for t clamped to [0, 4 kCols].
/// key and col0 are in [0, 2^31): the difference does not overflow.
template <int kCols>
__device__ __forceinline__ int columns_below(int key, int col0) {
  int t = key - col0;
  t = t < 0 ? 0 : (t > 4 * kCols ? 4 * kCols : t);
  return 2 * (t >> 3) + min(t & 7, 2);
}

/// Bits [0, n) of a row, n <= 32.
__device__ __forceinline__ uint64_t low_bits(int n) { return (uint64_t{1} << n) - 1; }

/// grid_table_bits' column loop: per row slot r the query side q[r] of the test (GridTableReader::query); returns bit
/// r * kCols + c for column c (key col0 + 8 (c / 2) + c % 2). Columns go in pairs from the last, each pair's keys
/// read one pair ahead (their loads overlap the compares), and every bit enters its row's word at the bottom.
template <int kRowSlots, int kCols, bool kAxial>
__device__ __forceinline__ uint64_t grid_columns(const GridTableReader& grid,
                                                 const GridTableReader::Query (&q)[kRowSlots], int k_len, int col0) {
  // A key past the sequence reads as 0: its bits are clear in the range part.
  auto key_at = [&](int j) { return j < k_len ? grid.key(j) : 0u; };
  uint32_t bits[kRowSlots];
#pragma unroll
  for (int r = 0; r < kRowSlots; ++r) bits[r] = 0;
  int j = col0 + 8 * (kCols / 2 - 1);
  uint32_t next0 = key_at(j), next1 = key_at(j + 1);
#pragma unroll 1
  for (int n = kCols / 2 - 1; n >= 0; --n, j -= 8) {  // columns 2n + 1 and 2n: keys j + 1 and j
    const uint32_t key0 = next0, key1 = next1;
    if (n > 0) {
      next0 = key_at(j - 8);
      next1 = key_at(j - 7);
    }
#pragma unroll
    for (int r = 0; r < kRowSlots; ++r)
      bits[r] = bits[r] << 2 | static_cast<uint32_t>(grid.visible_as<kAxial>(key1, q[r])) << 1 |
                static_cast<uint32_t>(grid.visible_as<kAxial>(key0, q[r]));
  }
  uint64_t visible = 0;
#pragma unroll
  for (int r = 0; r < kRowSlots; ++r) visible |= uint64_t{bits[r]} << (r * kCols);
  return visible;
}

/// The grid rule from ElementMask::grid_table (make_grid_table) on one lane's scores, bits as element_rule_bits'
/// (only meaningful where the rows and keys lie in the sequence). Per row slot the query side of the test, per
/// column one key read shared by the row slots; then a few integer ops per score instead of GridMask::visible's
/// divisions (GridTableReader: in_box for neighborhoods, in_line for axial rules).
template <int kRowSlots, int kCols>
__device__ __forceinline__ uint64_t grid_table_bits(const ElementMask& rule, int row_lane, int rows, int pack,
                                                    int k_len, int col0) {
  static_assert(kCols % 2 == 0 && kCols <= 32, "column pairs, one 32-bit word per row slot");
  const GridTableReader grid = GridTableReader::of(rule);
  GridTableReader::Query q[kRowSlots];
#pragma unroll
  for (int r = 0; r < kRowSlots; ++r) {
    const int row = row_lane + 16 * (r >> 1) + 8 * (r & 1);
    // Rows past the sequence read token 0 (their bits are clear); no division without packed query heads.
    q[r] = grid.query(row >= rows ? 0 : pack == 1 ? row : row / pack);
  }
  return grid.axial ? grid_columns<kRowSlots, kCols, true>(grid, q, k_len, col0)
                    : grid_columns<kRowSlots, kCols, false>(grid, q, k_len, col0);
}

/// The same, out of line: the sm_90a consumers call it (inlined, it took the D = 256 kernel from 56 B of spill stores
/// to 148, ptxas).
template <int kRowSlots, int kCols>
__device__ OMNIATTN_NOINLINE uint64_t grid_table_bits_outlined(const ElementMask& rule, int row_lane, int rows,
                                                               int pack, int k_len, int col0) {
  return grid_table_bits<kRowSlots, kCols>(rule, row_lane, rows, pack, k_len, col0);
}

/// The element rule (ElementMask::visible: windows, documents, grids) on one lane's scores: bit r * kCols + c for
/// row slot r (packed query row row_lane + 16 (r / 2) + 8 (r % 2), the accumulator layout) and column c (key
/// col0 + 8 (c / 2) + c % 2). Rows past the sequence and keys past k_len count as hidden (the rule's arrays end
/// there; those scores are masked or unused).
/// Per row, the window / sinks / prefix part is two key ranges (ElementMask::row_ranges), each a run of columns:
/// a few integer ops per row instead of the rule per score. Grids with a grid_table: grid_table_bits
/// (kGridOutOfLine: its outlined form). Documents (and grids without a table: fields past 32 bits) are then tested
/// on the scores still visible, in one rolled loop over the lane's scores (the rule is large). That shape spills
/// least (ptxas): the pair test inside the row loop cost the sm_80 D = 96 kernel 32 B of spills instead of 4, nested
/// row and column loops the sm_90a D = 256 one 64 B instead of 56.
template <int kRowSlots, int kCols, bool kGridOutOfLine = false>
__device__ __forceinline__ uint64_t element_rule_bits(const FwdParams& p, int row_lane, int rows, int head_block,
                                                      int q_len, int k_len, int col0) {
  static_assert(kRowSlots * kCols <= 64 && kCols <= 32, "one bit per score of the lane");
  const ElementMask& rule = p.sparse.element;
  uint64_t visible = 0;
  if (rule.window_left < 0 && rule.window_right < 0 && rule.head_windows.empty()) {
    // No window (grids, documents): row_ranges is [0, k_len) whatever the sinks and prefix.
    const uint64_t keys = low_bits(columns_below<kCols>(k_len, col0));
#pragma unroll
    for (int r = 0; r < kRowSlots; ++r)
      if (row_lane + 16 * (r >> 1) + 8 * (r & 1) < rows) visible |= keys << (r * kCols);
  } else {
#pragma unroll 1
    for (int r = 0; r < kRowSlots; ++r) {
      const int row = row_lane + 16 * (r >> 1) + 8 * (r & 1);
      if (row >= rows) continue;
      const int32_t head = p.sparse.mask_head(head_block * p.pack + row % p.pack);
      const ElementMask::RowRanges keys = rule.row_ranges(head, row / p.pack, q_len, k_len);  // within [0, k_len]
      const int front = columns_below<kCols>(static_cast<int>(keys.front), col0);
      const int begin = columns_below<kCols>(static_cast<int>(keys.begin), col0);
      const int end = columns_below<kCols>(static_cast<int>(keys.end), col0);
      visible |= (low_bits(front) | (low_bits(end) & ~low_bits(begin))) << (r * kCols);
    }
  }
  const bool grid_table = rule.grid.kind != GridMask::Kind::none && !rule.grid_table.empty();
  if (grid_table) {
    if constexpr (kGridOutOfLine)
      visible &= grid_table_bits_outlined<kRowSlots, kCols>(rule, row_lane, rows, p.pack, k_len, col0);
    else
      visible &= grid_table_bits<kRowSlots, kCols>(rule, row_lane, rows, p.pack, k_len, col0);
  }
  if (!rule.q_document.empty() || (rule.grid.kind != GridMask::Kind::none && !grid_table)) {
    int i = 0;
#pragma unroll 1
    for (int b = 0; b < kRowSlots * kCols; ++b) {
      const int r = b / kCols, c = b % kCols;
      if (c == 0) i = (row_lane + 16 * (r >> 1) + 8 * (r & 1)) / p.pack;  // rows past the sequence have no bit set
      if (((visible >> b) & 1) && !rule.pair_visible(i, col0 + 8 * (c >> 1) + (c & 1), !grid_table))
        visible &= ~(uint64_t{1} << b);
    }
  }
  return visible;
}

/// The same, out of line (the sm_80 kernel). Measured with ptxas (sm_80 builds): inlined, the block-sparse kernel
/// spills 96 B instead of 4 at D = 96 (80 B instead of 100 at D = 128), and the grid rule's local arrays enter the
/// KV loop. The sm_90a consumers inline it: an outlined pair loop took D = 256 from 60 B of spills to 180.
template <int kRowSlots, int kCols>
__device__ OMNIATTN_NOINLINE uint64_t element_rule_bits_outlined(const FwdParams& p, int row_lane, int rows,
                                                                 int head_block, int q_len, int k_len, int col0) {
  return element_rule_bits<kRowSlots, kCols>(p, row_lane, rows, head_block, q_len, k_len, col0);
}

template <class SAcc>
struct TileScores {
  /// Packed query row -> (token, query head); see FwdParams::pack.
  static __device__ __forceinline__ int token_of(const FwdParams& p, int row) { return row / p.pack; }
  static __device__ __forceinline__ int head_of(const FwdParams& p, const CtaWork& w, int row) {
    return w.head_block * p.pack + row % p.pack;
  }

  // Both score passes address a lane's scores relative to col0 = key of its element (n = 0, e = 0): element
  // (n, e) is key col0 + 8n + e, a compile-time offset, so the per-score work is immediate compares.

  /// Scores -> logits with the shared ScoreMod (scale, softcap, ALiBi), for every score of the tile.
  static __device__ __forceinline__ void apply_score_mod(SAcc& s, const FwdParams& p, const CtaWork& w,
                                                         const SequenceMask& mask, int warp_row0, int j0, int lane) {
    const int col0 = j0 + SAcc::col_of(0, 0, lane);
#pragma unroll
    for (int r = 0; r < SAcc::kRowSlots; ++r) {
      const int row = w.row0 + warp_row0 + SAcc::row_of_slot(r, lane);
      const int head = head_of(p, w, row);
      const float slope = p.alibi ? p.alibi[w.batch * p.alibi_batch_stride + head] : 0.f;
      const ScoreMod<float> mod{p.scale, p.softcap, slope};
      // |diag - key| is all ALiBi needs: shift both by col0.
      const int64_t diag_rel = mask.diag(token_of(p, row)) - col0;
#pragma unroll
      for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s.v[r / 2][n][2 * (r % 2) + e];
          x = mod.logit(x, diag_rel, 8 * n + e);
        }
    }
  }

  /// Sets invisible scores to -inf; called only for tiles that SequenceMask::classify calls partial.
  static __device__ __forceinline__ void apply_mask(SAcc& s, const FwdParams& p, const CtaWork& w,
                                                    const SequenceMask& mask, int warp_row0, int j0, int lane) {
    const int col0 = j0 + SAcc::col_of(0, 0, lane);
    auto relative = [col0](int64_t key) {  // key - col0, clamped to int (keys and col0 are < 2^31)
      const int64_t d = key - col0;
      return static_cast<int>(d < INT32_MIN ? INT32_MIN : (d > INT32_MAX ? INT32_MAX : d));
    };
#pragma unroll
    for (int r = 0; r < SAcc::kRowSlots; ++r) {
      const int64_t token = token_of(p, w.row0 + warp_row0 + SAcc::row_of_slot(r, lane));
      // SequenceMask::visible(token, key) is key < key_end && (key >= key_begin || key < sinks), keys >= 0;
      // the same bounds relative to col0:
      const int end = relative(mask.key_end(token));
      const int begin = relative(mask.key_begin(token));
      const int sinks = relative(mask.sinks < mask.sk ? mask.sinks : mask.sk);
#pragma unroll
      for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = 8 * n + e;
          if (!(c < end && (c >= begin || c < sinks))) s.v[r / 2][n][2 * (r % 2) + e] = -INFINITY;
        }
    }
  }

  /// The block mask's element rule on the lane's scores of KV tile j0 (for tiles in partial blocks): bit
  /// r * 2 kN + 2 n + e says whether score (r, n, e) is visible. It depends on positions only, so the kernels
  /// evaluate it before S = Q K^T, while S's registers are free.
  /// kOutOfLine: call element_rule_bits_outlined (sm_80) instead of inlining the rule (sm_90a: all but the grid
  /// table's part).
  template <bool kOutOfLine>
  static __device__ __forceinline__ uint64_t element_bits(const FwdParams& p, const CtaWork& w, int warp_row0, int j0,
                                                          int lane) {
    const int row_lane = w.row0 + warp_row0 + (lane >> 2), col0 = j0 + SAcc::col_of(0, 0, lane);
    constexpr int kRowSlots = SAcc::kRowSlots, kCols = 2 * SAcc::kN;
    if constexpr (kOutOfLine)
      return element_rule_bits_outlined<kRowSlots, kCols>(p, row_lane, w.rows, w.head_block, w.seq.q_len,
                                                          w.seq.k_len, col0);
    else
      return element_rule_bits<kRowSlots, kCols, true>(p, row_lane, w.rows, w.head_block, w.seq.q_len, w.seq.k_len,
                                                       col0);
  }

  /// Sets to -inf the scores whose bit in `visible` (element_bits) is clear.
  static __device__ __forceinline__ void apply_element_bits(SAcc& s, uint64_t visible) {
    constexpr int kCols = 2 * SAcc::kN;
#pragma unroll
    for (int r = 0; r < SAcc::kRowSlots; ++r)
#pragma unroll
      for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (!((visible >> (r * kCols + 2 * n + e)) & 1)) s.v[r / 2][n][2 * (r % 2) + e] = -INFINITY;
  }
};

}  // namespace omniattn::detail::cuda
