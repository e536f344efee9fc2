#pragma once
// Tile scheduler of the sm_90a forward. Tiles are numbered in the order they should start:
//  - the (head, sequence) pairs are cut into sections of `section` pairs whose K and V fit in L2 together;
//  - within a section, heaviest first: the last query tile of every pair, then the one before, ... so that under a
//    causal mask the long tiles start first and the short ones fill in behind, while the CTAs running at the same
//    time read the K/V of a few heads only (hits in L2, not HBM).
// Two ways to hand tiles to CTAs, one code path:
//  - one CTA per tile (grid = tiles, no counter): CTA b runs tile b;
//  - dynamic persistent (one CTA per SM, `counters` set): CTA b starts with tile b, and each next tile is
//    gridDim.x + an atomic ticket. A CTA that finishes early takes the next tile in order, so causal tiles of very
//    different lengths balance themselves and one tile's loads run under the previous tile's epilogue.
// Only the producer thread asks for tiles; it hands each index to its consumers with the tile's Q (Sm90Barriers).
// The counters reset themselves: the last CTA to run out of tiles zeroes them, so no launch needs a memset.
#include "cuda/flash/fwd_scheduler.cuh"
#include "cuda/flash/sm90_params.hpp"

// Out of line on the GPU (see exhausted); the host emulation (tests) has no such attribute to spell.
#if defined(OMNIATTN_CUDA_EMULATION)
#define OMNIATTN_OUT_OF_LINE
#else
#define OMNIATTN_OUT_OF_LINE __noinline__
#endif

namespace omniattn::detail::cuda {

struct Sm90TileScheduler {
  static __host__ __device__ __forceinline__ int64_t tiles(const FwdParams& p) {
    return int64_t{p.m_blocks} * p.head_blocks * p.batch;
  }
  /// Tile `t` of the order above; `section`: (head, sequence) pairs per section (>= 1).
  static __device__ __forceinline__ WorkTile tile(const FwdParams& p, int section, int t) {
    const int pairs = p.head_blocks * p.batch;
    const int per_section = section * p.m_blocks;
    const int first_pair = t / per_section * section;
    const int in_section = min(section, pairs - first_pair);  // the last section may be smaller
    const int i = t % per_section;
    const int pair = first_pair + i % in_section, level = i / in_section;
    return {p.m_blocks - 1 - level, pair % p.head_blocks, pair / p.head_blocks};
  }
  /// The CTA's next tile after the current one (>= tiles: none left), in a grid of `ctas` CTAs (gridDim.x; a
  /// parameter so that host tests can play many CTAs). Producer thread only.
  static __device__ __forceinline__ int next(Sm90TileCounters* counters, int tiles, int ctas) {
    if (counters == nullptr) return tiles;  // one CTA per tile
    const int64_t t = int64_t{ctas} + atomicAdd(&counters->ticket, 1);  // tickets stay below `tiles`
    if (t < tiles) return static_cast<int>(t);
    exhausted(counters, ctas);
    return tiles;
  }

  /// This CTA draws no more. The last CTA to get here resets the counters for the next launch: every other CTA has
  /// drawn its last ticket before counting itself exhausted (the fences order the two atomics). Out of line: it runs
  /// once per CTA and stays out of the producer's loop.
  static __device__ OMNIATTN_OUT_OF_LINE void exhausted(Sm90TileCounters* counters, int ctas) {
    __threadfence();
    if (atomicAdd(&counters->exhausted, 1) == ctas - 1) {
      __threadfence();
      atomicExch(&counters->ticket, 0);
      atomicExch(&counters->exhausted, 0);
    }
  }
};

}  // namespace omniattn::detail::cuda
