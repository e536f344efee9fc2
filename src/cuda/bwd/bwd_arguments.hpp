#pragma once
// Arguments -> Params of the sm_80 backward: a validated BackwardProblem becomes kernel parameters, the
// per-sequence metadata to upload (empty when every sequence has the same geometry) and the workspace size.
// Plain C++ (no CUDA syntax): the emulator tests build launches with it too.
#include <cstddef>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "cuda/bwd/bwd_config.hpp"
#include "cuda/bwd/bwd_params.hpp"

namespace omniattn::detail::cuda {

struct BwdLaunch {
  BwdParams params;
  std::vector<BwdSeqInfo> seqs;  // per-sequence geometry to upload; empty: uniform (params.uniform_*)
  BwdSplitPlan split;            // units and split tiles to upload (bwd_split_plan.hpp); empty: none
  std::size_t workspace_bytes = 0;
  // Byte offsets of the workspace arrays (bwd_params.hpp); bind_workspace() turns them into pointers.
  std::size_t lse_offset = 0, dsum_offset = 0, dq_offset = 0, dsink_offset = 0, semaphore_offset = 0;
  std::size_t dkv_offset = 0;

  bool empty() const { return params.batch == 0 || params.hq == 0; }
  /// Points the params' workspace arrays into `base` (workspace_bytes, 256-byte aligned).
  void bind_workspace(void* base);
  /// Points the params' metadata (seqs, units, split tiles) at this object's host vectors (the emulator tests).
  void use_host_metadata();
};

/// dq_partials: f32 dQ accumulators the main kernel adds into (BwdParams::dq_partials).
BwdLaunch make_bwd_launch(const BackwardProblem& p, const BwdTuning& tuning, int dq_partials = 1);

/// Launch-order switches for tests (the environment gives their process defaults: OMNIATTN_BWD_DET_OVERLAP,
/// OMNIATTN_BWD_SPARSE_CHUNK, OMNIATTN_BWD_SPLIT_RUN); -1 keeps that default. Read by every later make_bwd_launch.
struct BwdOrderOverride {
  int det_overlap = -1;   ///< BwdParams::dq_overlap (0 / 1)
  int sparse_chunk = -1;  ///< BwdParams::dq_chunk of block-sparse, non-deterministic calls
  int split_run = -2;     ///< block-sparse split walks: -2 the default, -1 the plan's rule, 0 none, > 0 runs of that
                          ///< many mask blocks (plan_bwd_split)
};
void set_bwd_order_override(const BwdOrderOverride& o);

/// Why the sm_80 backward cannot take `p` (layout and size limits of the kernels), or an empty string.
std::string bwd_layout_refusal(const BackwardProblem& p, const BwdTuning& tuning);

}  // namespace omniattn::detail::cuda
