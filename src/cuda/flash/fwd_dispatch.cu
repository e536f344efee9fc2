// The one runtime -> template conversion of the sm_80 forward: walks kFwdTuningTable at compile time, so
// every row of the table is dispatched (and must be instantiated: a missing fwd_instantiate_d*.cu is a link
// error, not a silent refusal).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <iterator>

#include "cuda/flash/fwd_config.hpp"
#include "cuda/flash/fwd_launch.hpp"

namespace omniattn::detail::cuda {
namespace {

template <std::size_t kRow>
bool dispatch_from_row(DType dtype, int d, int dv, const FwdParams& p, cudaStream_t stream) {
  if constexpr (kRow == std::size(kFwdTuningTable)) {
    return false;
  } else {
    constexpr FwdTuning t = kFwdTuningTable[kRow];
    if (t.d != d || t.dv != dv) return dispatch_from_row<kRow + 1>(dtype, d, dv, p, stream);
    switch (dtype) {
      case DType::bf16:
        launch_fwd_sm80<__nv_bfloat16, t.d, t.dv>(p, stream);
        return true;
      case DType::f16:
        launch_fwd_sm80<__half, t.d, t.dv>(p, stream);
        return true;
      default:
        return false;
    }
  }
}

template <std::size_t kRow>
FwdKernelInfo info_from_row(DType dtype, int d, int dv) {
  if constexpr (kRow == std::size(kFwdTuningTable)) {
    return {};
  } else {
    constexpr FwdTuning t = kFwdTuningTable[kRow];
    if (t.d != d || t.dv != dv) return info_from_row<kRow + 1>(dtype, d, dv);
    switch (dtype) {
      case DType::bf16:
        return fwd_sm80_kernel_info<__nv_bfloat16, t.d, t.dv>();
      case DType::f16:
        return fwd_sm80_kernel_info<__half, t.d, t.dv>();
      default:
        return {};
    }
  }
}

}  // namespace

FwdKernelInfo fwd_sm80_info(DType dtype, int d, int dv) { return info_from_row<0>(dtype, d, dv); }

bool run_fwd_sm80(DType dtype, int d, int dv, const FwdParams& p, cudaStream_t stream) {
  return dispatch_from_row<0>(dtype, d, dv, p, stream);
}

}  // namespace omniattn::detail::cuda
