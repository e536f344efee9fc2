#pragma once
// Loads of one decode CTA: its Q rows (cp.async), and K/V tiles gathered through the block table, either as
// 16-byte cp.async chunks (kv_tile) or, on sm_90, as one bulk copy per row completing on the stage's mbarrier
// (kv_rows_bulk). Rows are 16-byte aligned (the launch checks base pointers and strides).
// Rows past the sequence's end, and rows whose page id is out of range, are zero-filled without a read; an
// out-of-range id also raises the thread's `bad_page` so that the CTA writes NaN for its rows.
#include <cstdint>

#include "cuda/common/bulk_copy.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/decode/decode_params.hpp"

namespace omniattn::detail::cuda {

template <class Traits>
struct DecodeLoad {
  using Element = typename Traits::Element;
  using QTile = typename Traits::QTile;
  using KTile = typename Traits::KTile;
  static constexpr int kThreads = Traits::kThreads;
  static constexpr int kChunksPerRow = Traits::kD / 8;
  static constexpr int kRowsPerPass = kThreads / kChunksPerRow;
  static_assert(kThreads % kChunksPerRow == 0, "a pass copies whole rows");
  static_assert(Traits::kBlockN % kRowsPerPass == 0, "a tile is whole passes");
  static constexpr int kPasses = Traits::kBlockN / kRowsPerPass;  // rows one thread copies per tile

  /// Q tile (kRows, kD): row r is packed row seg.row0 + r = (token, head) = ((row0 + r) / group, kv_head *
  /// group + (row0 + r) % group); rows >= seg.rows are zero-filled.
  static __device__ __forceinline__ void q_rows(const DecodeParams& p, const DecodeSegment& seg, uint32_t q_smem,
                                                int thread) {
    static_assert(Traits::kRows % kRowsPerPass == 0, "Q is whole passes");
    const Element* q = static_cast<const Element*>(p.q) + seg.batch * p.q_batch;
    const int col = (thread % kChunksPerRow) * 8;
#pragma unroll
    for (int pass = 0; pass < Traits::kRows / kRowsPerPass; ++pass) {
      const int r = thread / kChunksPerRow + pass * kRowsPerPass;
      const int row = seg.row0 + r;
      const bool valid = r < seg.rows;
      const int token = row / p.group, head = seg.kv_head * p.group + row % p.group;
      const Element* src = valid ? q + token * p.q_token + head * p.q_head + col : q;
      cp_async_16(q_smem + QTile::offset(r, col), src, valid);
    }
  }

  /// Page holding key j of sequence b, or -1 when the table's id is out of [0, num_pages).
  static __device__ __forceinline__ int64_t page_of(const DecodeParams& p, int b, int j) {
    if (p.table == nullptr) return b;
    const int column = p.page_shift >= 0 ? (j >> p.page_shift) : j / p.page_size;
    const int32_t page = p.table[b * p.table_batch + column];
    return (page >= 0 && page < p.num_pages) ? page : -1;
  }

  /// Page ids of the rows this thread copies in one tile (one per pass); -1: out of range. Fetched one tile ahead
  /// of its copies (pages_of, then kv_tile a step later), so the table read's latency hides under a tile of work
  /// instead of stalling every cp.async behind it.
  struct TilePages {
    int32_t page[kPasses];
  };

  /// Reads the page ids of tile key0.. (plain loads: the registers are first used by kv_tile, a step later).
  static __device__ __forceinline__ TilePages pages_of(const DecodeParams& p, const DecodeSegment& seg, int key0,
                                                       int thread) {
    TilePages t;
    // A page that holds the whole tile (page_size a multiple of block_n; tiles start at multiples of block_n):
    // one table read per tile.
    const bool one_page = p.page_size % Traits::kBlockN == 0;
    const int32_t tile_page = one_page && key0 < seg.seq_len ? static_cast<int32_t>(page_of(p, seg.batch, key0)) : 0;
#pragma unroll
    for (int pass = 0; pass < kPasses; ++pass) {
      const int j = key0 + thread / kChunksPerRow + pass * kRowsPerPass;
      t.page[pass] = j >= seg.seq_len ? 0 : one_page ? tile_page : static_cast<int32_t>(page_of(p, seg.batch, j));
    }
    return t;
  }

  /// Key j's row of seg's KV head in the V (is_v) or K pool, in page `page` (an id in range).
  static __device__ __forceinline__ const Element* kv_row(const DecodeParams& p, const DecodeSegment& seg, bool is_v,
                                                          int64_t page, int j) {
    const int64_t slot = p.page_shift >= 0 ? (j & (p.page_size - 1)) : j % p.page_size;
    return is_v ? static_cast<const Element*>(p.v) + seg.kv_head * p.v_head + page * p.v_page + slot * p.v_token
                : static_cast<const Element*>(p.k) + seg.kv_head * p.k_head + page * p.k_page + slot * p.k_token;
  }

  /// K and V tiles (kBlockN, kD) of keys key0.. of segment `seg` into the stage at k_smem / v_smem, through the
  /// page ids `pages` (pages_of of the same key0).
  static __device__ __forceinline__ void kv_tile(const DecodeParams& p, const DecodeSegment& seg, int key0,
                                                 const TilePages& pages, uint32_t k_smem, uint32_t v_smem, int thread,
                                                 bool& bad_page) {
    const auto* k = static_cast<const Element*>(p.k);  // what an invalid (zero-filled) copy names: never read
    const auto* v = static_cast<const Element*>(p.v);
    const int col = (thread % kChunksPerRow) * 8;
#pragma unroll
    for (int pass = 0; pass < kPasses; ++pass) {
      const int r = thread / kChunksPerRow + pass * kRowsPerPass;
      const int j = key0 + r;
      bool valid = j < seg.seq_len;
      const int64_t page = pages.page[pass];
      if (valid && page < 0) {
        bad_page = true;
        valid = false;
      }
      const Element* k_src = valid ? kv_row(p, seg, false, page, j) + col : k;
      const Element* v_src = valid ? kv_row(p, seg, true, page, j) + col : v;
      cp_async_16(k_smem + KTile::offset(r, col), k_src, valid);
      cp_async_16(v_smem + KTile::offset(r, col), v_src, valid);
    }
  }

  // Bulk copies (sm_90): thread i copies row i % kBlockN of the K tile (i < kBlockN) or of the V tile, whole.
  static_assert(2 * Traits::kBlockN == kThreads, "one K or V row per thread");
  static constexpr uint32_t kRowBytes = Traits::kD * sizeof(Element);

  /// Page id of the row this thread copies in the tile at key0 (-1: out of range; 0 past the end).
  static __device__ __forceinline__ int32_t bulk_page_of(const DecodeParams& p, const DecodeSegment& seg, int key0,
                                                         int thread) {
    const int j = key0 + thread % Traits::kBlockN;
    return j >= seg.seq_len ? 0 : static_cast<int32_t>(page_of(p, seg.batch, j));
  }

  /// This thread's row of the K/V tile at key0 into the stage at k_smem (K tile, then V tile): arrives on `bar`
  /// expecting the row's bytes and bulk-copies it, or zero-fills it (past the end, or a bad page id: `bad_page`).
  /// Every thread arrives once per tile (the barrier counts kThreads).
  static __device__ __forceinline__ void kv_rows_bulk(const DecodeParams& p, const DecodeSegment& seg, int key0,
                                                      int32_t page, uint8_t* k_smem, uint64_t* bar, int thread,
                                                      bool& bad_page) {
    const int r = thread % Traits::kBlockN;
    const bool is_v = thread >= Traits::kBlockN;
    const int j = key0 + r;
    bool valid = j < seg.seq_len;
    if (valid && page < 0) {
      bad_page = true;
      valid = false;
    }
    uint8_t* dst = k_smem + (is_v ? KTile::kBytes : 0) + KTile::offset(r, 0);
    mbarrier_expect_bytes(bar, valid ? kRowBytes : 0);
    if (!valid) {
      for (uint32_t c = 0; c < kRowBytes; c += 16) *reinterpret_cast<uint4*>(dst + c) = uint4{0, 0, 0, 0};
      fence_shared_for_bulk();  // before a later tile's bulk copy into this row
      return;
    }
    bulk_load(dst, kv_row(p, seg, is_v, page, j), kRowBytes, bar);
  }
};

}  // namespace omniattn::detail::cuda
