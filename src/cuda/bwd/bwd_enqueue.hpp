#pragma once
// One backward call on the caller's stream, shared by cuda_sm80 and cuda_sm90 (same params, workspace and row
// kernels; only the main kernel differs): BackwardProblem -> BwdLaunch, sequence metadata upload, workspace,
// then the backend's `run` enqueues the kernels.
#include <cuda_runtime_api.h>

#include "core/problem.hpp"
#include "cuda/bwd/bwd_config.hpp"
#include "cuda/bwd/bwd_params.hpp"
#include "cuda/bwd/bwd_tma_maps.hpp"

namespace omniattn::detail::cuda {

/// A backend's main kernel: `run` enqueues the kernels for (dtype, d, dv) (false: not instantiated); `make_maps`
/// (null for cp.async kernels) builds the TMA maps, per sequence when `varlen`; `dq_partials` (null: 1) how many
/// dQ accumulators it adds into.
struct BwdMainKernel {
  bool (*run)(DType dtype, int d, int dv, const BwdParams& p, const BwdTmaMaps& maps, cudaStream_t stream) = nullptr;
  void (*make_maps)(const BackwardProblem& p, bool varlen, BwdTmaMaps& maps) = nullptr;
  /// The f32 dQ accumulators the main kernel adds into for `p` (BwdParams::dq_partials); null: 1.
  int (*dq_partials)(const BackwardProblem& p) = nullptr;
};

/// `p` must have passed the backend's can_run.
void enqueue_bwd(const BackwardProblem& p, const BwdTuning& tuning, const BwdMainKernel& kernel);

}  // namespace omniattn::detail::cuda
