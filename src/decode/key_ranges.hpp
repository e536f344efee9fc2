#pragma once
// The keys a decode step must read for one sequence, in units of `tile` keys: the sink tiles [0, sink_end)
// and the window tiles [window_begin, window_end), merged into one range when they touch. Tiles outside both
// hold no key any query row of the sequence sees (SequenceMask's rules), so no backend reads them.
// Work is addressed by a virtual tile index v in [0, count()) over the concatenation of the two ranges.
#include <cstdint>

#include "core/mask_policy.hpp"

namespace omniattn::detail {

struct KeyRanges {
  int32_t sink_end = 0;      // tiles [0, sink_end)
  int32_t window_begin = 0;  // tiles [window_begin, window_end)
  int32_t window_end = 0;

  OMNI_HD int32_t count() const { return sink_end + (window_end - window_begin); }
  /// Tile (or key, for tile = 1) of virtual index v.
  OMNI_HD int32_t key(int32_t v) const { return v < sink_end ? v : window_begin + (v - sink_end); }

  /// Ranges of a sequence of `mask.sq` queries over `mask.sk` keys, restricted to query rows [t0, t1).
  static KeyRanges of(const SequenceMask& mask, int64_t tile, int64_t t0 = 0, int64_t t1 = -1) {
    if (t1 < 0) t1 = mask.sq;
    KeyRanges r;
    if (t1 <= t0) return r;
    const int64_t end = mask.key_end(t1 - 1);  // non-decreasing in the row: the last row's is the largest
    const int64_t begin = mask.key_begin(t0) < end ? mask.key_begin(t0) : end;
    const int64_t sinks = mask.sinks < begin ? mask.sinks : begin;  // sink keys the window does not hold
    const int64_t sink_tiles = (sinks + tile - 1) / tile;
    int64_t wb = begin / tile, we = (end + tile - 1) / tile;
    if (begin >= end) wb = we = 0;  // no window part
    if (we == wb || sink_tiles >= wb) {  // sinks alone, or touching the window: one range from 0
      r.window_end = static_cast<int32_t>(we > sink_tiles ? we : sink_tiles);
    } else {
      r.sink_end = static_cast<int32_t>(sink_tiles);
      r.window_begin = static_cast<int32_t>(wb);
      r.window_end = static_cast<int32_t>(we);
    }
    return r;
  }
};

}  // namespace omniattn::detail
