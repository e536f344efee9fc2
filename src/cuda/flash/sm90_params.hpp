#pragma once
// Kernel parameters of the sm_90a forward: the portable FwdParams (geometry, mask and score semantics; GQA
// packing off) plus the TMA descriptors of Q, K and V. Passed as a __grid_constant__.
#include <cuda.h>

#include "cuda/common/cta_timeline.hpp"
#include "cuda/flash/fwd_params.hpp"

namespace omniattn::detail::cuda {

/// Device counters of the dynamic persistent schedule, zero between launches (Sm90TileScheduler::next).
struct Sm90TileCounters {
  int32_t ticket;     // tiles handed out beyond the first gridDim.x
  int32_t exhausted;  // CTAs that have drawn past the last tile
};

struct Sm90Params {
  FwdParams base;  // base.seqs: per-sequence geometry of varlen batches (device), else null
  // Varlen batches: per sequence b, maps seq_maps[kMapsPerSequence * b + {0, 1, 2, 3}] of its Q, K, V, O alone
  // (batch 1, exactly its tokens, so TMA zero-fills past each sequence's end, never reads the next one, and stores
  // no row past it). Null: the maps below.
  static constexpr int kMapsPerSequence = 4;
  const CUtensorMap* seq_maps = nullptr;
  int section = 1;    // (head, sequence) pairs per scheduler section (Sm90TileScheduler)
  // Dynamic persistent schedule: `ctas` CTAs (one per SM, at most one per tile) draw tiles from these counters.
  // Null: one CTA per tile.
  Sm90TileCounters* counters = nullptr;
  int ctas = 0;
  CUtensorMap q_map;  // box (64, block_m) of [batch, q_len, hq, d]
  CUtensorMap k_map;  // box (64, block_n) of [batch, k_len, hkv, d]
  CUtensorMap v_map;  // box (64, block_n) of [batch, k_len, hkv, dv]
  CUtensorMap o_map;  // box (64, 64) of [batch, q_len, hq, dv] (epilogue with o_through_smem)
  bool o_by_tma = false;  // o_through_smem instantiations: store O with TMA (false: from registers, experiments)
  bool sparse_row = false;  // the host built the call for its (D, Dv)'s sparse row (sm90_has_sparse_row): run it
  // Debug (OMNIATTN_FWD_TIMELINE): one record per tile of Sm90TileScheduler (slot = tile index): when its Q was
  // handed over and its epilogue issued, the SM, the query tile, the head block and the KV tiles (dense; -1 with a
  // block mask). Null: nothing recorded.
  CtaTimelineRecord* timeline = nullptr;
};

}  // namespace omniattn::detail::cuda
