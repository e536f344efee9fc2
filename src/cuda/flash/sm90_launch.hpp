#pragma once
// Entry points of the sm_90a forward kernels: launch_fwd_sm90 (sm90_kernel.cuh) is explicitly instantiated one
// head dim per translation unit (sm90_instantiate_d*.cu); run_fwd_sm90 (sm90_dispatch.cu) is the one place where
// the runtime dtype and head dims become template arguments.
#include <cuda_runtime_api.h>

#include "cuda/flash/fwd_launch.hpp"  // FwdKernelInfo
#include "cuda/flash/sm90_params.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {

template <class Element, int kD, int kDv>
void launch_fwd_sm90(const Sm90Params& p, cudaStream_t stream);
template <class Element, int kD, int kDv>
FwdKernelInfo fwd_sm90_kernel_info();

/// Launches the kernel for (dtype, d, dv); false when no instantiation exists (can_run refuses those).
bool run_fwd_sm90(DType dtype, int d, int dv, const Sm90Params& p, cudaStream_t stream);
/// Kernel info for (dtype, d, dv) on the current device; ctas_per_sm = 0 when no instantiation exists.
FwdKernelInfo fwd_sm90_info(DType dtype, int d, int dv);

}  // namespace omniattn::detail::cuda
