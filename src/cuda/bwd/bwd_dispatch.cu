// The one runtime -> template conversion of the sm_80 backward: walks kBwdTuningTable at compile time, so every
// row of the table is dispatched (and must be instantiated: a missing bwd_instantiate_d*.cu is a link error).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <iterator>

#include "cuda/bwd/bwd_config.hpp"
#include "cuda/bwd/bwd_launch.hpp"

namespace omniattn::detail::cuda {
namespace {

template <std::size_t kRow>
bool dispatch_from_row(DType dtype, int d, int dv, const BwdParams& p, cudaStream_t stream) {
  if constexpr (kRow == std::size(kBwdTuningTable)) {
    return false;
  } else {
    constexpr BwdTuning t = kBwdTuningTable[kRow];
    if (t.d != d || t.dv != dv) return dispatch_from_row<kRow + 1>(dtype, d, dv, p, stream);
    switch (dtype) {
      case DType::bf16:
        launch_bwd_sm80<__nv_bfloat16, t.d, t.dv>(p, stream);
        return true;
      case DType::f16:
        launch_bwd_sm80<__half, t.d, t.dv>(p, stream);
        return true;
      default:
        return false;
    }
  }
}

}  // namespace

bool run_bwd_sm80(DType dtype, int d, int dv, const BwdParams& p, cudaStream_t stream) {
  return dispatch_from_row<0>(dtype, d, dv, p, stream);
}

}  // namespace omniattn::detail::cuda
