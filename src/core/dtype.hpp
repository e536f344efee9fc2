#pragma once
// 16-bit float storage types and exact, round-to-nearest-even scalar conversions.
// (Highway 1.0's BF16FromF32 truncates; outputs must round like the GPU does.)
#include <cstdint>
#include <cstring>

#include "omniattn/tensor.hpp"

namespace omniattn::detail {

struct bf16_t { uint16_t bits; };
struct f16_t { uint16_t bits; };

inline float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float to_float(float x) { return x; }
inline float to_float(double x) { return static_cast<float>(x); }
inline float to_float(bf16_t x) { return bits_to_float(uint32_t{x.bits} << 16); }
inline float to_float(f16_t x) {
  const uint32_t sign = uint32_t{x.bits & 0x8000u} << 16;
  uint32_t exp = (x.bits >> 10) & 0x1f, mant = x.bits & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp == 0) {
    if (mant == 0) return bits_to_float(sign);
    // Subnormal: value = mant * 2^-24.
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
}

inline bf16_t to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((u >> 16) | 0x40)};  // quiet nan
  u += 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<uint16_t>(u >> 16)};
}

inline f16_t to_f16(float f) {
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return {static_cast<uint16_t>(sign | 0x7e00u)};
  if (abs >= 0x477ff000u) return {static_cast<uint16_t>(sign | 0x7c00u)};  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {  // below the smallest normal half: round to a multiple of 2^-24
    const float a = bits_to_float(abs);
    const float scaled = a * 16777216.0f;  // exact; rint rounds half to even
    const auto m = static_cast<uint32_t>(__builtin_rintf(scaled));
    return {static_cast<uint16_t>(sign | m)};
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);  // round mantissa to 10 bits
  r -= 112u << 23;
  return {static_cast<uint16_t>(sign | (r >> 13))};
}

template <class T> inline T from_float(float f);
template <> inline float from_float<float>(float f) { return f; }
template <> inline double from_float<double>(float f) { return f; }
template <> inline bf16_t from_float<bf16_t>(float f) { return to_bf16(f); }
template <> inline f16_t from_float<f16_t>(float f) { return to_f16(f); }

/// Reads element `i` of a buffer of dtype `t` as double.
inline double load_as_double(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::f64: return static_cast<const double*>(p)[i];
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f16: return to_float(static_cast<const f16_t*>(p)[i]);
    case DType::bf16: return to_float(static_cast<const bf16_t*>(p)[i]);
    case DType::i32: return static_cast<const int32_t*>(p)[i];
  }
  return 0;
}
/// Writes `x` (rounded to nearest even) into element `i` of a buffer of dtype `t`.
inline void store_from_double(void* p, DType t, int64_t i, double x) {
  switch (t) {
    case DType::f64: static_cast<double*>(p)[i] = x; break;
    case DType::f32: static_cast<float*>(p)[i] = static_cast<float>(x); break;
    case DType::f16: static_cast<f16_t*>(p)[i] = to_f16(static_cast<float>(x)); break;
    case DType::bf16: static_cast<bf16_t*>(p)[i] = to_bf16(static_cast<float>(x)); break;
    case DType::i32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(x); break;
  }
}
/// Rounds a value to what dtype `t` can hold (the identity for f64).
inline double round_to(DType t, double x) {
  switch (t) {
    case DType::f32: return static_cast<float>(x);
    case DType::f16: return to_float(to_f16(static_cast<float>(x)));
    case DType::bf16: return to_float(to_bf16(static_cast<float>(x)));
    default: return x;
  }
}

}  // namespace omniattn::detail
