// Runtime (dtype, d, dv) -> the sm_80 backward instantiation (cuda/common/head_dim_dispatch.hpp).
#include "cuda/bwd/bwd_config.hpp"
#include "cuda/bwd/bwd_launch.hpp"
#include "cuda/common/head_dim_dispatch.hpp"

namespace omniattn::detail::cuda {

bool run_bwd_sm80(DType dtype, int d, int dv, const BwdParams& p, const BwdTmaMaps&, cudaStream_t stream) {
  return dispatch_head_dims<kBwdTuningTable>(
      dtype, d, dv, [&]<class E, int kD, int kDv>() { launch_bwd_sm80<E, kD, kDv>(p, stream); });
}

}  // namespace omniattn::detail::cuda
