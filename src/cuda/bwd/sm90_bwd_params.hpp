#pragma once
// Kernel parameters of the sm_90a backward main kernel: the shared BwdParams plus the TMA descriptors of the
// per-step operands Q and dO. Passed as a __grid_constant__ (the maps must live in parameter, constant or global
// memory for cp.async.bulk.tensor).
#include <cuda.h>

#include "cuda/bwd/bwd_params.hpp"

namespace omniattn::detail::cuda {

struct Sm90BwdParams {
  BwdParams base;  // base.seqs: per-sequence geometry of varlen batches (device), else null
  // Varlen batches: per sequence b, maps seq_maps[kMapsPerSequence * b + {0, 1}] of its Q and dO alone (batch 1,
  // exactly its query tokens, so TMA zero-fills past its end and never reads the next sequence's rows or padding).
  // Null: the maps below, indexed by batch.
  static constexpr int kMapsPerSequence = 2;
  const CUtensorMap* seq_maps = nullptr;
  CUtensorMap q_map;   // box (64 columns, block_m rows) of [batch, q_len, hq, d]
  CUtensorMap do_map;  // box (64 columns, block_m rows) of [batch, q_len, hq, dv]
};

}  // namespace omniattn::detail::cuda
