#pragma once
// Tile scheduler of the sm_90a forward: a CTA walks the tiles blockIdx.x, + gridDim.x, ... (one CTA per tile when
// the grid has as many CTAs as tiles; persistent with one CTA per SM).
// The (head, sequence) pairs are cut into sections of `section` pairs whose K and V fit in L2 together; a
// section's tiles are ordered heaviest first -- the last query tile of every pair, then the one before -- so
// that under a causal mask the long tiles spread over the CTAs and the short ones fill in behind, while the
// CTAs running at the same time read the K/V of a few heads only (hits in L2, not HBM).
// The producer and the consumers of a CTA walk the same sequence, so the producer loads the next tile's Q, K and
// V while the consumers still finish the current one.
#include "cuda/flash/fwd_scheduler.cuh"

namespace omniattn::detail::cuda {

struct Sm90TileScheduler {
  static __host__ __device__ __forceinline__ int64_t tiles(const FwdParams& p) {
    return int64_t{p.m_blocks} * p.head_blocks * p.batch;
  }
  /// `section`: (head, sequence) pairs per section (>= 1).
  static __device__ __forceinline__ WorkTile tile(const FwdParams& p, int section, int t) {
    const int pairs = p.head_blocks * p.batch;
    const int per_section = section * p.m_blocks;
    const int first_pair = t / per_section * section;
    const int in_section = min(section, pairs - first_pair);  // the last section may be smaller
    const int i = t % per_section;
    const int pair = first_pair + i % in_section, level = i / in_section;
    return {p.m_blocks - 1 - level, pair % p.head_blocks, pair / p.head_blocks};
  }
};

}  // namespace omniattn::detail::cuda
