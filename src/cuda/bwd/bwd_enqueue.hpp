#pragma once
// One backward call on the caller's stream, shared by cuda_sm80 and cuda_sm90 (same params, workspace and row
// kernels; only the main kernel differs): BackwardProblem -> BwdLaunch, sequence metadata upload, workspace,
// then `run` enqueues the kernels.
#include <cuda_runtime_api.h>

#include "core/problem.hpp"
#include "cuda/bwd/bwd_config.hpp"
#include "cuda/bwd/bwd_params.hpp"

namespace omniattn::detail::cuda {

using BwdRunner = bool (*)(DType dtype, int d, int dv, const BwdParams& p, cudaStream_t stream);

/// `p` must have passed the backend's can_run.
void enqueue_bwd(const BackwardProblem& p, const BwdTuning& tuning, BwdRunner run);

}  // namespace omniattn::detail::cuda
