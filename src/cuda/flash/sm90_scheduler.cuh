#pragma once
// Persistent tile scheduler of the sm_90a forward: one CTA per SM walks the tiles blockIdx.x, + gridDim.x, ...
// Tiles are ordered heaviest first -- all (head, batch) pairs of the last query tile, then of the one before --
// so that under a causal mask the long tiles are spread over every CTA and the short ones fill in behind.
// The producer and the consumers of a CTA walk the same sequence, so the producer loads the next tile's Q,
// K and V while the consumers still finish the current one.
#include "cuda/flash/fwd_scheduler.cuh"

namespace omniattn::detail::cuda {

struct Sm90TileScheduler {
  static __host__ __device__ __forceinline__ int64_t tiles(const FwdParams& p) { return int64_t{p.m_blocks} * p.head_blocks * p.batch; }
  static __device__ __forceinline__ WorkTile tile(const FwdParams& p, int t) {
    const int per_level = p.head_blocks * p.batch;
    const int level = t / per_level, rest = t % per_level;
    return {p.m_blocks - 1 - level, rest % p.head_blocks, rest / p.head_blocks};
  }
};

}  // namespace omniattn::detail::cuda
