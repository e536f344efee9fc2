#pragma once
// Entry points of the sm_90a forward kernels: launch_fwd_sm90_row (sm90_kernel.cuh) is explicitly instantiated one
// tuning row per translation unit (sm90_instantiate_d*.cu); run_fwd_sm90 (sm90_dispatch.cu) is the one place where
// the runtime dtype and head dims become template arguments.
#include <cuda_runtime_api.h>

#include "cuda/flash/fwd_launch.hpp"  // FwdKernelInfo
#include "cuda/flash/sm90_config.hpp"
#include "cuda/flash/sm90_params.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {

/// One tuning row's kernel (kSparseRow: the block-sparse row of a (D, Dv) that has one), explicitly instantiated one
/// row per translation unit.
template <class Element, int kD, int kDv, bool kSparseRow>
void launch_fwd_sm90_row(const Sm90Params& p, cudaStream_t stream);
template <class Element, int kD, int kDv, bool kSparseRow>
FwdKernelInfo fwd_sm90_kernel_info_row();

/// The kernel of (D, Dv) for this call: its sparse row's when the host built the call for it (block-sparse calls,
/// or experiments), else the dense row's.
template <class Element, int kD, int kDv>
void launch_fwd_sm90(const Sm90Params& p, cudaStream_t stream) {
  if constexpr (sm90_has_sparse_row(kD, kDv)) {
    if (p.sparse_row) {
      launch_fwd_sm90_row<Element, kD, kDv, true>(p, stream);
      return;
    }
  }
  launch_fwd_sm90_row<Element, kD, kDv, false>(p, stream);
}
template <class Element, int kD, int kDv>
FwdKernelInfo fwd_sm90_kernel_info() {  // the dense row's
  return fwd_sm90_kernel_info_row<Element, kD, kDv, false>();
}

/// Launches the kernel for (dtype, d, dv); false when no instantiation exists (can_run refuses those).
bool run_fwd_sm90(DType dtype, int d, int dv, const Sm90Params& p, cudaStream_t stream);
/// Kernel info for (dtype, d, dv) on the current device; ctas_per_sm = 0 when no instantiation exists.
FwdKernelInfo fwd_sm90_info(DType dtype, int d, int dv);

}  // namespace omniattn::detail::cuda
