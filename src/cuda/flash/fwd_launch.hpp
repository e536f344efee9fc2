#pragma once
// Entry points of the sm_80 forward kernels. launch_fwd_sm80 is defined in fwd_kernel.cuh and explicitly
// instantiated, one (D, Dv) per translation unit, in fwd_instantiate_d*.cu; run_fwd_sm80 (fwd_dispatch.cu)
// is the one place where the runtime dtype and head dims become template arguments.
#include <cuda_runtime_api.h>

#include "cuda/common/kernel_setup.hpp"
#include "cuda/flash/fwd_params.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {

template <class Element, int kD, int kDv>
void launch_fwd_sm80(const FwdParams& p, cudaStream_t stream);

using FwdKernelInfo = KernelInfo;  // what the current device makes of one instantiation
template <class Element, int kD, int kDv>
FwdKernelInfo fwd_sm80_kernel_info();

/// Launches the kernel for (dtype, d, dv); false when no instantiation exists (can_run refuses those).
bool run_fwd_sm80(DType dtype, int d, int dv, const FwdParams& p, cudaStream_t stream);
/// Kernel info for (dtype, d, dv) on the current device; ctas_per_sm = 0 when no instantiation exists.
FwdKernelInfo fwd_sm80_info(DType dtype, int d, int dv);

}  // namespace omniattn::detail::cuda
