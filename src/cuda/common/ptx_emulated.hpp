#pragma once
// Host emulation of the PTX wrappers of ptx.cuh (see emulation.hpp): same names, same fragment layouts.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/dtype.hpp"
#include "cuda/common/emulation.hpp"

namespace omniattn::detail::cuda {

inline uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(static_cast<const uint8_t*>(p) - emu::cta()->smem.data());
}
inline uint8_t* dynamic_smem() { return emu::cta()->smem.data(); }

inline void cp_async_16(uint32_t smem_dst, const void* gmem_src, bool valid) {
  emu::smem_at(smem_dst, 16, 16, "cp.async: shared destination misaligned or out of bounds");
  if (valid && reinterpret_cast<uintptr_t>(gmem_src) % 16 != 0) emu::fail("cp.async: global source misaligned");
  emu::current()->copies.push_back({smem_dst, gmem_src, valid});
}
inline void cp_async_commit() { emu::current()->group_ends.push_back(emu::current()->copies.size()); }
template <int kPending>
void cp_async_wait() {
  emu::Fiber& f = *emu::current();
  const int groups = static_cast<int>(f.group_ends.size());
  if (groups <= kPending) return;
  const size_t land = f.group_ends[groups - 1 - kPending];  // copies of the retired groups
  for (size_t i = 0; i < land; ++i) {
    uint8_t* dst = emu::cta()->smem.data() + f.copies[i].dst;
    if (f.copies[i].valid)
      std::memcpy(dst, f.copies[i].src, 16);
    else
      std::memset(dst, 0, 16);
  }
  f.copies.erase(f.copies.begin(), f.copies.begin() + static_cast<std::ptrdiff_t>(land));
  f.group_ends.erase(f.group_ends.begin(), f.group_ends.begin() + (groups - kPending));
  for (size_t& e : f.group_ends) e -= land;
}

inline uint16_t smem_u16(uint32_t address) {
  uint16_t v;
  std::memcpy(&v, emu::smem_at(address, 2, 2, "ldmatrix: out of bounds"), 2);
  return v;
}

template <bool kTrans>
void ldmatrix_emulated(uint32_t (&r)[4], uint32_t smem_src) {
  emu::smem_at(smem_src, 16, 16, "ldmatrix: row address misaligned or out of bounds");
  emu::warp_collective({smem_src}, [&](auto&& read) {
    const int g = emu::lane() / 4, t = emu::lane() % 4;
    for (int i = 0; i < 4; ++i) {
      uint16_t lo, hi;
      if (!kTrans) {  // row g of matrix i, columns 2t, 2t+1
        const auto row = static_cast<uint32_t>(read(8 * i + g, 0));
        lo = smem_u16(row + 4 * t);
        hi = smem_u16(row + 4 * t + 2);
      } else {  // rows 2t, 2t+1 of matrix i, column g
        lo = smem_u16(static_cast<uint32_t>(read(8 * i + 2 * t, 0)) + 2 * g);
        hi = smem_u16(static_cast<uint32_t>(read(8 * i + 2 * t + 1, 0)) + 2 * g);
      }
      r[i] = uint32_t{lo} | (uint32_t{hi} << 16);
    }
  });
}
inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_src) { ldmatrix_emulated<false>(r, smem_src); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem_src) { ldmatrix_emulated<true>(r, smem_src); }

template <class Element>
inline float element_to_float(uint16_t bits);
template <>
inline float element_to_float<__nv_bfloat16>(uint16_t bits) {
  return to_float(bf16_t{bits});
}
template <>
inline float element_to_float<__half>(uint16_t bits) {
  return to_float(f16_t{bits});
}

template <class Element>
struct Mma16816 {
  static void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    uint32_t c_bits[4];
    std::memcpy(c_bits, d, 16);
    emu::warp_collective({a[0], a[1], a[2], a[3], b0, b1}, [&](auto&& read) {
      auto half = [](uint64_t word, int which) { return static_cast<uint16_t>(word >> (16 * which)); };
      // A[m][k] and B[k][n] from the fragments of every lane (layouts in ptx.cuh).
      auto a_at = [&](int m, int k) {
        const int lane = 4 * (m % 8) + (k % 8) / 2, reg = (m / 8) + 2 * (k / 8);
        return element_to_float<Element>(half(read(lane, reg), k % 2));
      };
      auto b_at = [&](int k, int n) {
        const int lane = 4 * n + (k % 8) / 2, reg = 4 + k / 8;
        return element_to_float<Element>(half(read(lane, reg), k % 2));
      };
      const int g = emu::lane() / 4, t = emu::lane() % 4;
      for (int e = 0; e < 4; ++e) {
        const int m = g + 8 * (e / 2), n = 2 * t + e % 2;
        float acc = d[e];
        for (int k = 0; k < 16; ++k) acc += a_at(m, k) * b_at(k, n);
        d[e] = acc;
      }
    });
    (void)c_bits;
  }
};

template <class Element>
inline uint32_t pack_pair(float lo, float hi);
template <>
inline uint32_t pack_pair<__nv_bfloat16>(float lo, float hi) {
  return uint32_t{to_bf16(lo).bits} | (uint32_t{to_bf16(hi).bits} << 16);
}
template <>
inline uint32_t pack_pair<__half>(float lo, float hi) {
  return uint32_t{to_f16(lo).bits} | (uint32_t{to_f16(hi).bits} << 16);
}

inline float fast_exp2(float x) { return std::exp2(x); }

}  // namespace omniattn::detail::cuda
