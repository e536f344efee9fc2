#pragma once
// The KV tiles a query tile of the forward kernels (sm_80 and sm_90a) visits under a block mask: the listed
// mask KV blocks of its query block, each cut into block_k / kBlockN kernel tiles, intersected with the kernel
// tiles the AttentionOptions mask leaves visible (KvRange's two intervals: sink tiles and window tiles).
// Plain host/device code (unit-tested on the host against brute force).
//
// Four segments, in walk order: (partial, sink), (partial, window), (full, sink), (full, window). A segment is
// a run of consecutive entries of one sorted list, in kernel-tile units, with its first entry's tiles below
// the interval and its last entry's tiles above it cut off; step `it` maps to its tile in O(1). Building the
// walk costs a few loads per list when the AttentionOptions mask clips nothing (the usual case: the block
// mask itself says what is visible), and a binary search per interval end otherwise.
#include <cstdint>

#include "cuda/common/block_sparse.hpp"

namespace omniattn::detail::cuda {

struct SparseKvWalk {
  static constexpr bool kSparse = true;
  const int32_t* list[2] = {nullptr, nullptr};  // the row's partial and full block indices (sorted)
  int32_t end[4] = {0, 0, 0, 0};    // steps [end[s-1], end[s]) belong to segment s
  int32_t shift[4] = {0, 0, 0, 0};  // step it of segment s is kernel tile position it + shift[s] of list s / 2
  int32_t split_log2 = 0;           // kernel KV tiles per mask KV block: 1 << split_log2
  int count = 0;                    // steps (kernel KV tiles) in all

  /// Whether step it (0 <= it < count) lies in a partial block (the element mask decides its pairs).
  OMNIATTN_HD bool partial(int it) const { return it < end[1]; }
  /// Kernel KV tile of step it (keys tile * kBlockN ..), 0 <= it < count.
  OMNIATTN_HD int block(int it) const {
    // Selects, not a dynamic index: the walk stays in registers.
    const bool in_partial = it < end[1];
    const int u = it + (in_partial ? (it < end[0] ? shift[0] : shift[1]) : (it < end[2] ? shift[2] : shift[3]));
    const int32_t* l = in_partial ? list[0] : list[1];  // u: position in that list, in kernel tiles
    return (l[u >> split_log2] << split_log2) + (u & ((1 << split_log2) - 1));
  }
};

/// First index of the strictly increasing `list` (n entries, each in [0, k_blocks)) whose entry is >= v.
OMNIATTN_HD int32_t first_at_least(const int32_t* list, int32_t n, int32_t k_blocks, int32_t v) {
  v = v < 0 ? 0 : (v > k_blocks ? k_blocks : v);
  // n distinct entries in [0, k_blocks): at most v of them are < v and at most k_blocks - v are >= v.
  int32_t lo = n - (k_blocks - v), hi = n < v ? n : v;
  lo = lo < 0 ? 0 : lo;
  if (lo >= hi || list[lo] >= v) return lo;
  if (list[hi - 1] < v) return hi;  // the usual answers first: nothing or everything clipped
  while (lo < hi) {
    const int32_t mid = (lo + hi) / 2;
    if (list[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/// The walk of `run` (one query block's listed KV blocks; mask KV blocks are 1 << split_log2 kernel tiles)
/// restricted to the kernel tiles [0, sink_tiles) and [window_first, window_end) (window_first >= sink_tiles).
OMNIATTN_HD SparseKvWalk make_sparse_walk(const BlockRun& run, int32_t k_blocks, int32_t split_log2,
                                          int32_t sink_tiles, int32_t window_first, int32_t window_end) {
  SparseKvWalk w;
  w.list[0] = run.partial_blocks;
  w.list[1] = run.full_blocks;
  w.split_log2 = split_log2;
  const int32_t entries[2] = {run.partial, run.count - run.partial};
  const int32_t from[2] = {0, window_first}, to[2] = {sink_tiles, window_end};
  const int32_t split = 1 << split_log2;
  int32_t steps = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll  // constant indices: the walk's arrays stay in registers
#endif
  for (int s = 0; s < 4; ++s) {
    const int32_t* list = w.list[s >> 1];
    const int32_t n = entries[s >> 1], x = from[s & 1], y = to[s & 1];
    int32_t tiles = 0, shift = 0;
    if (x < y && n > 0) {
      // Entries whose tiles meet [x, y): blocks [x / split, ceil(y / split)).
      const int32_t i0 = first_at_least(list, n, k_blocks, x >> split_log2);
      const int32_t i1 = first_at_least(list, n, k_blocks, (y + split - 1) >> split_log2);
      if (i0 < i1) {
        const int32_t below = x - (list[i0] << split_log2);             // tiles of the first entry before x
        const int32_t above = ((list[i1 - 1] + 1) << split_log2) - y;  // tiles of the last entry from y on
        const int32_t lo = below > 0 ? below : 0, hi = above > 0 ? above : 0;
        tiles = ((i1 - i0) << split_log2) - lo - hi;
        shift = (i0 << split_log2) + lo - steps;
      }
    }
    steps += tiles;
    w.end[s] = steps;
    w.shift[s] = shift;
  }
  w.count = steps;
  return w;
}

/// log2(block_k / block_n) for the power-of-two sizes the kernels accept (block_k a multiple of block_n).
OMNIATTN_HD int32_t split_log2_of(int32_t block_k, int32_t block_n) {
  int32_t l = 0;
  while ((block_n << l) < block_k) ++l;
  return l;
}

}  // namespace omniattn::detail::cuda
