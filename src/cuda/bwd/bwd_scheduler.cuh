#pragma once
// Which work a backward CTA does: sequence geometry, and for the main kernel blockIdx -> (KV tile, KV head,
// sequence) plus the query blocks that see the tile (bwd_tiles.hpp; with a block mask, bwd_sparse.cuh).
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/bwd/bwd_params.hpp"
#include "cuda/bwd/bwd_tiles.hpp"
#include "cuda/common/ptx.cuh"  // CUDA built-ins (dim3, blockIdx), or their host emulation

namespace omniattn::detail::cuda {

__device__ __forceinline__ BwdSeqInfo bwd_seq(const BwdParams& p, int b) {
  if (p.seqs) return p.seqs[b];
  BwdSeqInfo s;
  s.q_len = p.uniform_q_len;
  s.k_len = p.uniform_k_len;
  s.k_stored = p.uniform_k_stored;
  s.m_block0 = b * p.m_blocks;
  return s;
}

__device__ __forceinline__ SequenceMask bwd_mask(const BwdParams& p, const BwdSeqInfo& s) {
  return SequenceMask{s.q_len, s.k_len, p.window_left, p.window_right, p.sinks};
}

/// Pre/postprocess: one CTA per (query block, query head, sequence).
struct BwdRowScheduler {
  static dim3 grid(const BwdParams& p) {
    return dim3(static_cast<unsigned>(p.m_blocks), static_cast<unsigned>(p.hq), static_cast<unsigned>(p.batch));
  }
};

/// Which walks a kernel compiles (BwdWalk): both, behind a runtime test of BwdParams::block_sparse, or one.
enum class BwdWalkKind { any, dense, sparse };

template <BwdWalkKind kKind>
__device__ __forceinline__ bool bwd_walks_sparse(const BwdParams& p) {
  return kKind == BwdWalkKind::sparse || (kKind == BwdWalkKind::any && p.block_sparse);
}

/// Main kernel: one CTA per (unit, KV head, sequence); a unit is a KV tile, or a run of one (BwdParams::units).
/// Launch order -> tile in the order the deterministic mode adds dQ (descending when p.dq_descending, BwdParams):
/// CTAs start in that order, so a CTA only ever waits for CTAs that started before it. Ascending (the default)
/// starts the tiles with the most query blocks first under a causal mask.
/// p.dq_chunk > 0: within a sequence, the CTAs start in chunks of dq_chunk units of every KV head in turn (chunk 0
/// of head 0, 1, ..., then chunk 1 ...), instead of all units of one head. Deterministic mode: the dQ turns of a
/// query block form a chain over a head's tiles, and the CTAs running together lag each other by one link each:
/// a wave of one head's ~128 tiles would carry a chain of 128 links, a wave of chunks one of dq_chunk links.
/// Block-sparse (chunks of 1): every head's leading, often heaviest units (split runs, sinks, causal) start in the
/// first wave.
struct BwdKvScheduler {
  static dim3 grid(const BwdParams& p) {
    return dim3(static_cast<unsigned>(p.kv_units), static_cast<unsigned>(p.hkv), static_cast<unsigned>(p.batch));
  }
  /// The CTA's position in launch order within its sequence -> (unit, KV head).
  static __device__ __forceinline__ void unit_and_head(const BwdParams& p, int& unit, int& kv_head) {
    int t = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
    const int chunk = p.dq_chunk, units = p.kv_units;
    if (chunk > 0 && units > chunk) {
      const int linear = t + units * h;  // x runs fastest
      const int full = units / chunk, chunk_ctas = chunk * p.hkv;  // whole chunks; CTAs of one chunk index
      if (linear < full * chunk_ctas) {
        const int r = linear % chunk_ctas;
        h = r / chunk;
        t = linear / chunk_ctas * chunk + r % chunk;
      } else {  // the last, shorter chunk of every head
        const int rest = units - full * chunk, r = linear - full * chunk_ctas;
        h = r / rest;
        t = full * chunk + r % rest;
      }
    }
    unit = t;
    kv_head = h;
  }
  /// The CTA's unit (units[] index when p.units is set).
  static __device__ __forceinline__ int unit(const BwdParams& p) {
    int u, h;
    unit_and_head(p, u, h);
    return u;
  }
  /// The CTA's (KV tile in dQ order, KV head). A dense kernel (kKind dense) is never given a unit table.
  template <BwdWalkKind kKind = BwdWalkKind::any>
  static __device__ __forceinline__ void tile_and_head(const BwdParams& p, int& tile, int& kv_head) {
    int u;
    unit_and_head(p, u, kv_head);
    tile = kKind != BwdWalkKind::dense && p.units != nullptr ? p.units[u].tile : p.dq_descending ? p.n_blocks - 1 - u : u;
  }
};

/// Split tile run slot `slot` of sequence b, KV head h in the workspace (bwd_params.hpp: dkv_partial): (tile_keys,
/// row_floats = d + dv) f32, written by the run's epilogue and summed by the split-store kernel.
__device__ __forceinline__ float* bwd_dkv_slot(const BwdParams& p, int slot, int b, int h, int row_floats) {
  return p.dkv_partial + ((int64_t{slot} * p.batch + b) * p.hkv + h) * p.tile_keys * row_floats;
}

struct BwdKvWork {
  int n = 0, kv_head = 0, batch = 0;
  int j0 = 0;  // first key of the tile (tiles are p.tile_keys keys)
  BwdSeqInfo seq;
  QueryBlocksOfTile blocks;  // dense: query blocks that see the tile (same for every query head)
  int k_block = 0;           // block-sparse: the mask KV block that holds the tile
};

template <int kBlockM, BwdWalkKind kKind = BwdWalkKind::any>
__device__ __forceinline__ bool make_kv_work(const BwdParams& p, BwdKvWork& w) {
  BwdKvScheduler::tile_and_head<kKind>(p, w.n, w.kv_head);
  w.batch = static_cast<int>(blockIdx.z);
  w.seq = bwd_seq(p, w.batch);
  w.j0 = w.n * p.tile_keys;
  if (w.j0 >= w.seq.k_stored) return false;
  if (bwd_walks_sparse<kKind>(p))
    w.k_block = w.n / p.k_tiles_per_block;
  else
    w.blocks = QueryBlocksOfTile::of(bwd_mask(p, w.seq), w.n, kBlockM, p.tile_keys);
  return true;
}

}  // namespace omniattn::detail::cuda
