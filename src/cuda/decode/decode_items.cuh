#pragma once
// A decode CTA's work items (p.items[first, end), decode_plan.hpp) as a queue whose next descriptors are read ahead:
// item1 / seg1 describe the item after the current one and item2 the one after that, so that moving on uses
// registers loaded an item earlier and never waits for a (dependent) load.
#include "cuda/decode/decode_params.hpp"

namespace omniattn::detail::cuda {

struct DecodeItemQueue {
  int index = 0, end = 0;  // current item (of p.items); index == end: past the last
  DecodeItem item, item1, item2;
  DecodeSegment seg, seg1;

  __device__ __forceinline__ DecodeItemQueue(const DecodeParams& p, int first, int end_) : index(first), end(end_) {
    if (index < end) item = p.items[index], seg = p.segments[item.segment];
    if (index + 1 < end) item1 = p.items[index + 1], seg1 = p.segments[item1.segment];
    if (index + 2 < end) item2 = p.items[index + 2];
  }
  __device__ __forceinline__ bool valid() const { return index < end; }
  __device__ __forceinline__ int tiles() const { return item.tile_end - item.tile_begin; }
  /// First key of the item's virtual tile i (relative to item.tile_begin).
  __device__ __forceinline__ int key(int i, int block_n) const { return seg.tiles.key(item.tile_begin + i) * block_n; }
  __device__ __forceinline__ void next(const DecodeParams& p) {
    ++index;
    item = item1, seg = seg1, item1 = item2;
    if (index + 1 < end) seg1 = p.segments[item1.segment];
    if (index + 2 < end) item2 = p.items[index + 2];
  }
};

}  // namespace omniattn::detail::cuda
