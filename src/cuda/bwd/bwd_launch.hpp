#pragma once
// Entry points of the sm_80 backward kernels. launch_bwd_sm80 is defined in bwd_kernel.cuh and explicitly
// instantiated, one (D, Dv) per translation unit, in bwd_instantiate_d*.cu; run_bwd_sm80 (bwd_dispatch.cu) is
// the one place where the runtime dtype and head dims become template arguments.
#include <cuda_runtime_api.h>

#include "cuda/bwd/bwd_params.hpp"
#include "cuda/bwd/bwd_tma_maps.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {

/// Enqueues preprocess, main, postprocess (and the sink-logit gradient) on `stream`. The params' workspace
/// pointers must be bound (BwdLaunch::bind_workspace).
template <class Element, int kD, int kDv>
void launch_bwd_sm80(const BwdParams& p, cudaStream_t stream);

/// The row kernels around a main kernel (shared by the sm_80 and sm_90a backward): preprocess (D, LSE * log2e,
/// zeroed dQ accumulator) and postprocess (dQ conversion, then the sink-logit gradient).
template <class Element, int kD, int kDv>
void launch_bwd_preprocess(const BwdParams& p, cudaStream_t stream);
template <class Element, int kD, int kDv>
void launch_bwd_postprocess(const BwdParams& p, cudaStream_t stream);

/// Launches the kernels for (dtype, d, dv); false when no instantiation exists (can_run refuses those). The
/// sm_80 kernels load with cp.async: `maps` is unused (the BwdMainKernel signature).
bool run_bwd_sm80(DType dtype, int d, int dv, const BwdParams& p, const BwdTmaMaps& maps, cudaStream_t stream);

/// The sm_90a backward (wgmma main kernel, the sm_80 row kernels); false when (dtype, d, dv) has no sm_90a
/// instantiation (sm90_bwd_supports says which do). Q and dO load through `maps` (make_bwd_maps_sm90). Defined
/// only in builds with sm_90a.
bool run_bwd_sm90(DType dtype, int d, int dv, const BwdParams& p, const BwdTmaMaps& maps, cudaStream_t stream);
constexpr bool sm90_bwd_supports(int d, int dv) { return d == dv && (d == 64 || d == 128); }

}  // namespace omniattn::detail::cuda
