#pragma once
// Definitions of decode_launch.hpp's templates (included by the decode_instantiate_d*.cu files only).
#include <array>
#include <atomic>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/kernel_setup.hpp"
#include "cuda/decode/decode_kernel.cuh"
#include "cuda/decode/decode_launch.hpp"

namespace omniattn::detail::cuda {

template <class Traits>
int ctas_per_sm_of() {
  static std::array<std::atomic<int>, 64> cached{};  // per device; 0 = not yet queried
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  const size_t slot = static_cast<size_t>(device) % cached.size();
  if (int n = cached[slot].load(std::memory_order_relaxed); n > 0) return n;
  configure_kernel_once<decode_kernel<Traits>>(Traits::kSmemBytes, true, "decode kernel shared memory");
  int n = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, decode_kernel<Traits>, Traits::kThreads, Traits::kSmemBytes),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor (decode)");
  n = n > 0 ? n : 1;
  cached[slot].store(n, std::memory_order_relaxed);
  return n;
}

template <class Traits>
void launch_with(const DecodeParams& p, int grid, cudaStream_t stream) {
  configure_kernel_once<decode_kernel<Traits>>(Traits::kSmemBytes, true, "decode kernel shared memory");
  if (grid > 0) {
    decode_kernel<Traits><<<grid, Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
    check_launch("decode kernel");
  }
}

template <int kD>
int decode_ctas_per_sm(DType dtype, int row_warps) {
  if (dtype == DType::bf16)
    return row_warps == 1 ? ctas_per_sm_of<DecodeTraits<__nv_bfloat16, kD, 1>>()
                          : ctas_per_sm_of<DecodeTraits<__nv_bfloat16, kD, 4>>();
  return row_warps == 1 ? ctas_per_sm_of<DecodeTraits<__half, kD, 1>>() : ctas_per_sm_of<DecodeTraits<__half, kD, 4>>();
}

template <int kD>
void launch_decode(DType dtype, int row_warps, const DecodeParams& p, int grid, cudaStream_t stream) {
  if (dtype == DType::bf16) {
    if (row_warps == 1) launch_with<DecodeTraits<__nv_bfloat16, kD, 1>>(p, grid, stream);
    else launch_with<DecodeTraits<__nv_bfloat16, kD, 4>>(p, grid, stream);
  } else {
    if (row_warps == 1) launch_with<DecodeTraits<__half, kD, 1>>(p, grid, stream);
    else launch_with<DecodeTraits<__half, kD, 4>>(p, grid, stream);
  }
}

#define OMNIATTN_INSTANTIATE_DECODE(D)                                                              \
  template int decode_ctas_per_sm<D>(DType, int);                                                   \
  template void launch_decode<D>(DType, int, const DecodeParams&, int, cudaStream_t);

}  // namespace omniattn::detail::cuda
