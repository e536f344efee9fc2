#pragma once
// One lane's share of a row: 16-byte loads and stores, 16-byte vectors <-> f32, and the reductions over a lane
// group (the lanes holding one row) and over the groups of a warp. Device code and host emulation alike.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/common/ptx.cuh"

namespace omniattn::detail::cuda::graph {

inline constexpr unsigned kFullWarp = 0xffffffffu;

template <class Element>
inline constexpr int kElemsPerVector = 16 / static_cast<int>(sizeof(Element));  // 8 (16-bit) or 4 (f32)

#if defined(OMNIATTN_CUDA_EMULATION)
inline float word_to_float(uint32_t w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
inline uint32_t float_to_word(float f) {
  uint32_t w;
  std::memcpy(&w, &f, 4);
  return w;
}
inline uint4 load16(const void* p) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) emu::fail("graph: misaligned 16-byte load");
  uint4 v;
  std::memcpy(&v, p, 16);
  return v;
}
inline void store16(void* p, const uint4& v) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) emu::fail("graph: misaligned 16-byte store");
  std::memcpy(p, &v, 16);
}
inline void half_pair_to_float(uint32_t w, float& lo, float& hi) {
  lo = element_to_float<__half>(static_cast<uint16_t>(w));
  hi = element_to_float<__half>(static_cast<uint16_t>(w >> 16));
}
#else
__device__ __forceinline__ float word_to_float(uint32_t w) { return __uint_as_float(w); }
__device__ __forceinline__ uint32_t float_to_word(float f) { return __float_as_uint(f); }
/// Read-only path: inputs are never written by the kernel that reads them.
__device__ __forceinline__ uint4 load16(const void* p) { return __ldg(static_cast<const uint4*>(p)); }
__device__ __forceinline__ void store16(void* p, const uint4& v) { *static_cast<uint4*>(p) = v; }
__device__ __forceinline__ void half_pair_to_float(uint32_t w, float& lo, float& hi) {
  __half2 h;
  std::memcpy(&h, &w, 4);
  const float2 f = __half22float2(h);
  lo = f.x;
  hi = f.y;
}
#endif

/// The kElemsPerVector<Element> values of a 16-byte vector as floats, lowest address first.
template <class Element>
__device__ __forceinline__ void unpack(const uint4& v, float* f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  if constexpr (sizeof(Element) == 4) {
#pragma unroll
    for (int i = 0; i < 4; ++i) f[i] = word_to_float(w[i]);
  } else if constexpr (std::is_same_v<Element, __half>) {
#pragma unroll
    for (int i = 0; i < 4; ++i) half_pair_to_float(w[i], f[2 * i], f[2 * i + 1]);
  } else {  // bf16: the high 16 bits of an f32
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      f[2 * i] = word_to_float(w[i] << 16);
      f[2 * i + 1] = word_to_float(w[i] & 0xffff0000u);
    }
  }
}

/// kElemsPerVector<Element> floats rounded (to nearest even) into a 16-byte vector.
template <class Element>
__device__ __forceinline__ uint4 pack(const float* f) {
  uint32_t w[4];
  if constexpr (sizeof(Element) == 4) {
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = float_to_word(f[i]);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = pack_pair<Element>(f[2 * i], f[2 * i + 1]);
  }
  return uint4{w[0], w[1], w[2], w[3]};
}

/// Butterfly sums of x[0..n) over lanes `from`, 2 from, ... apart up to the warp (from a power of two): every lane
/// ends with the sum over its set, in the same bits (plain adds, commutative pairs). The n sums interleave so
/// that their shuffles overlap. Every lane of the warp calls it, with warp-uniform bounds.
template <int n>
__device__ __forceinline__ void butterfly_sum(float (&x)[n], int from, int to) {
  for (int offset = from; offset < to; offset <<= 1) {
#pragma unroll
    for (int c = 0; c < n; ++c) x[c] += __shfl_xor_sync(kFullWarp, x[c], offset);
  }
}
/// Sums over the `lanes` lanes of a group (the lanes holding one row).
template <int n>
__device__ __forceinline__ void group_sum(float (&x)[n], int lanes) {
  butterfly_sum(x, 1, lanes);
}
/// Sums over the groups of the warp (lanes `lanes` apart), each group ending with the total.
template <int n>
__device__ __forceinline__ void sum_over_groups(float (&x)[n], int lanes) {
  butterfly_sum(x, lanes, 32);
}

}  // namespace omniattn::detail::cuda::graph
