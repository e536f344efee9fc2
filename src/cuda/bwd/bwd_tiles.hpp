#pragma once
// Which (query block, KV tile) pairs the backward visits, in one place for the main kernel's loop and for the
// deterministic dQ order (both must agree exactly). Host + device: unit-tested on the CPU.
//
// The query rows [i0, i1) of a block see the keys [0, min(sinks, end)) and [begin, end) with begin =
// key_begin(i0), end = key_end(i1 - 1) (SequenceMask's bounds are non-decreasing in the row). So the KV tiles
// of block_n keys they visit are [0, sink_tiles) and [window_first, end_tiles): exactly the tiles that
// SequenceMask::classify does not call empty.
#include <cstdint>

#include "core/mask_policy.hpp"

namespace omniattn::detail::cuda {

struct KvTilesOfRows {
  int sink_tiles = 0, window_first = 0, end_tiles = 0;

  /// Key positions fit in int (the CUDA backends keep sequence lengths in int32; begin and end lie in [0, sk]), so
  /// the divisions are 32-bit: the deterministic dQ writer computes this every step in a warp of 24 registers, where
  /// a 64-bit division is a software routine of ~70 instructions.
  OMNI_HD static KvTilesOfRows of(const SequenceMask& mask, int64_t i0, int64_t i1, int block_n) {
    KvTilesOfRows t;
    const int64_t end = mask.key_end(i1 - 1);
    const int64_t sinks = mask.sinks < end ? mask.sinks : end;  // ceil(min(s, e) / n) = min(ceil(s / n), ceil(e / n))
    t.end_tiles = (static_cast<int>(end) + block_n - 1) / block_n;
    t.sink_tiles = (static_cast<int>(sinks) + block_n - 1) / block_n;
    const int first = static_cast<int>(mask.key_begin(i0)) / block_n;
    t.window_first = first > t.sink_tiles ? first : t.sink_tiles;  // no tile twice
    if (t.window_first > t.end_tiles) t.window_first = t.end_tiles;
    return t;
  }
  OMNI_HD bool contains(int n) const { return n < sink_tiles || (n >= window_first && n < end_tiles); }
  OMNI_HD int count() const { return sink_tiles + (end_tiles - window_first); }
  /// Position of tile n (contained) among the visited tiles, in ascending tile order.
  OMNI_HD int rank_ascending(int n) const { return n < sink_tiles ? n : sink_tiles + (n - window_first); }
  /// How many visited tiles lie in [a, b) (0 when b <= a). rank_ascending(n) == count_in(0, n).
  OMNI_HD int count_in(int a, int b) const { return overlap(a, b, 0, sink_tiles) + overlap(a, b, window_first, end_tiles); }

 private:
  OMNI_HD static int overlap(int a, int b, int c, int d) {
    const int lo = a > c ? a : c, hi = b < d ? b : d;
    return hi > lo ? hi - lo : 0;
  }
};

/// The query blocks [first, last) of block_m rows that see KV tile n (an interval: rows whose end is past
/// the tile form a suffix; for tiles past the sinks, rows whose window begins before the tile ends a prefix).
struct QueryBlocksOfTile {
  int first = 0, last = 0;

  OMNI_HD static QueryBlocksOfTile of(const SequenceMask& mask, int n, int block_m, int block_n) {
    QueryBlocksOfTile r;
    const int blocks = static_cast<int>((mask.sq + block_m - 1) / block_m);
    auto tiles = [&](int m) {
      const int64_t i0 = static_cast<int64_t>(m) * block_m;
      const int64_t i1 = i0 + block_m < mask.sq ? i0 + block_m : mask.sq;
      return KvTilesOfRows::of(mask, i0, i1, block_n);
    };
    // first: the first block with n < end_tiles (non-decreasing in m).
    int lo = 0, hi = blocks;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (n < tiles(mid).end_tiles) hi = mid;
      else lo = mid + 1;
    }
    r.first = lo;
    const int64_t sink_tiles = (mask.sinks + block_n - 1) / block_n;
    if (n < sink_tiles) {  // a sink tile: every block from `first` on sees it
      r.last = blocks;
      return r;
    }
    // last: the first block whose window begins past the tile (window_first > n; non-decreasing in m).
    lo = r.first, hi = blocks;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (tiles(mid).window_first > n) hi = mid;
      else lo = mid + 1;
    }
    r.last = lo;
    return r;
  }
};

}  // namespace omniattn::detail::cuda
