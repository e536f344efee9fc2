// Runtime (dtype, d, dv) -> the sm_90a forward instantiation (cuda/common/head_dim_dispatch.hpp).
#include "cuda/common/head_dim_dispatch.hpp"
#include "cuda/flash/sm90_config.hpp"
#include "cuda/flash/sm90_launch.hpp"

namespace omniattn::detail::cuda {

FwdKernelInfo fwd_sm90_info(DType dtype, int d, int dv) {
  FwdKernelInfo info;
  dispatch_head_dims<kSm90TuningTable>(dtype, d, dv,
                                       [&]<class E, int kD, int kDv>() { info = fwd_sm90_kernel_info<E, kD, kDv>(); });
  return info;
}

bool run_fwd_sm90(DType dtype, int d, int dv, const Sm90Params& p, cudaStream_t stream) {
  return dispatch_head_dims<kSm90TuningTable>(dtype, d, dv,
                                              [&]<class E, int kD, int kDv>() { launch_fwd_sm90<E, kD, kDv>(p, stream); });
}

}  // namespace omniattn::detail::cuda
