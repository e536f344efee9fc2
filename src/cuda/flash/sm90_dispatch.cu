// The one runtime -> template conversion of the sm_90a forward: walks kSm90TuningTable at compile time, so every
// row is dispatched (and must be instantiated: a missing sm90_instantiate_d*.cu is a link error).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <iterator>

#include "cuda/flash/sm90_config.hpp"
#include "cuda/flash/sm90_launch.hpp"

namespace omniattn::detail::cuda {
namespace {

template <std::size_t kRow>
bool dispatch_from_row(DType dtype, int d, int dv, const Sm90Params& p, cudaStream_t stream) {
  if constexpr (kRow == std::size(kSm90TuningTable)) {
    return false;
  } else {
    constexpr Sm90Tuning t = kSm90TuningTable[kRow];
    if (t.d != d || t.dv != dv) return dispatch_from_row<kRow + 1>(dtype, d, dv, p, stream);
    switch (dtype) {
      case DType::bf16:
        launch_fwd_sm90<__nv_bfloat16, t.d, t.dv>(p, stream);
        return true;
      case DType::f16:
        launch_fwd_sm90<__half, t.d, t.dv>(p, stream);
        return true;
      default:
        return false;
    }
  }
}

template <std::size_t kRow>
FwdKernelInfo info_from_row(DType dtype, int d, int dv) {
  if constexpr (kRow == std::size(kSm90TuningTable)) {
    return {};
  } else {
    constexpr Sm90Tuning t = kSm90TuningTable[kRow];
    if (t.d != d || t.dv != dv) return info_from_row<kRow + 1>(dtype, d, dv);
    switch (dtype) {
      case DType::bf16:
        return fwd_sm90_kernel_info<__nv_bfloat16, t.d, t.dv>();
      case DType::f16:
        return fwd_sm90_kernel_info<__half, t.d, t.dv>();
      default:
        return {};
    }
  }
}

}  // namespace

FwdKernelInfo fwd_sm90_info(DType dtype, int d, int dv) { return info_from_row<0>(dtype, d, dv); }

bool run_fwd_sm90(DType dtype, int d, int dv, const Sm90Params& p, cudaStream_t stream) {
  return dispatch_from_row<0>(dtype, d, dv, p, stream);
}

}  // namespace omniattn::detail::cuda
