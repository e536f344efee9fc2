#pragma once
// 16-bit pairs -> floats and bit casts, on the device and under the host emulation.
#include <cstdint>
#include <cstring>

#include "cuda/common/ptx.cuh"

namespace omniattn::detail::cuda {

#if defined(OMNIATTN_CUDA_EMULATION)
template <class Element>
inline void unpack_pair(uint32_t w, float& lo, float& hi) {
  lo = element_to_float<Element>(static_cast<uint16_t>(w));
  hi = element_to_float<Element>(static_cast<uint16_t>(w >> 16));
}
inline float bits_to_float(uint32_t w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
#else
/// The two 16-bit values of `w` (low half = lower column) as floats.
template <class Element>
__device__ __forceinline__ void unpack_pair(uint32_t w, float& lo, float& hi);
template <>
__device__ __forceinline__ void unpack_pair<__nv_bfloat16>(uint32_t w, float& lo, float& hi) {
  __nv_bfloat162 v;
  std::memcpy(&v, &w, 4);
  lo = __low2float(v);
  hi = __high2float(v);
}
template <>
__device__ __forceinline__ void unpack_pair<__half>(uint32_t w, float& lo, float& hi) {
  __half2 v;
  std::memcpy(&v, &w, 4);
  lo = __low2float(v);
  hi = __high2float(v);
}
__device__ __forceinline__ float bits_to_float(uint32_t w) { return __uint_as_float(w); }
#endif

}  // namespace omniattn::detail::cuda
