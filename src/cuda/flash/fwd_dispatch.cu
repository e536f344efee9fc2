// Runtime (dtype, d, dv) -> the sm_80 forward instantiation (cuda/common/head_dim_dispatch.hpp).
#include "cuda/common/head_dim_dispatch.hpp"
#include "cuda/flash/fwd_config.hpp"
#include "cuda/flash/fwd_launch.hpp"

namespace omniattn::detail::cuda {

FwdKernelInfo fwd_sm80_info(DType dtype, int d, int dv) {
  FwdKernelInfo info;
  dispatch_head_dims<kFwdTuningTable>(dtype, d, dv,
                                      [&]<class E, int kD, int kDv>() { info = fwd_sm80_kernel_info<E, kD, kDv>(); });
  return info;
}

bool run_fwd_sm80(DType dtype, int d, int dv, const FwdParams& p, cudaStream_t stream) {
  return dispatch_head_dims<kFwdTuningTable>(dtype, d, dv,
                                             [&]<class E, int kD, int kDv>() { launch_fwd_sm80<E, kD, kDv>(p, stream); });
}

}  // namespace omniattn::detail::cuda
