#pragma once
// Error measures of the CLI: the relative Frobenius error the benchmark reports, and the tolerance rule
// `verify` applies (FlashAttention's: err(ours) <= 2 * err(naive same precision) + rounding term, all
// measured in max-abs against the float64 reference).
#include <cmath>
#include <string>

#include "host_array.hpp"

namespace omniattn::cli {

/// max |a - b| over all elements; equal values (infinities too) count 0, any NaN gives +inf.
inline double max_abs_diff(const HostArray& a, const HostArray& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get(i), y = b.get(i);
    if (x == y) continue;
    const double d = std::abs(x - y);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

/// ||ours - ref||_F / ||ref||_F (absolute error when ref is all zero); NaN anywhere gives +inf.
inline double relative_error(const HostArray& ours, const HostArray& ref) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double x = ours.get(i), y = ref.get(i);
    if (std::isnan(x) || std::isnan(y)) return INFINITY;
    if (x == y) {
      norm += y * y;
      continue;
    }
    diff += (x - y) * (x - y);
    norm += y * y;
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

/// Twice the error of storing the float64 result in `dtype`, measured at magnitude |ref| + 0.3
/// (flash-attn's test rule): what even an exact computation loses to the output format.
inline double rounding_term(const HostArray& ref, DType dtype) {
  double m = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double x = ref.get(i);
    if (!std::isfinite(x)) continue;
    const double r = detail::round_to(dtype, detail::round_to(dtype, x + std::copysign(0.3, x)) - std::copysign(0.3, x));
    m = std::max(m, std::abs(r - x));
  }
  return 2 * m;
}

/// Largest f32 ulp among the finite values of `ref`. LSE and dsink are f32 tensors even for the float64
/// reference, so the reference itself carries half an ulp of rounding and ours another half.
inline double f32_storage_term(const HostArray& ref) {
  double m = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double x = std::abs(ref.get(i));
    if (!std::isfinite(x) || x == 0) continue;
    m = std::max(m, std::ldexp(1.0, std::ilogb(x) - 23));
  }
  return m;
}

/// 16 ulps of f32 (2^-23 * 16 ≈ 1.9e-6), rounded up.
inline constexpr double kF32Floor = 2e-6;

/// One tensor's verdict under the tolerance rule.
struct ToleranceCheck {
  std::string tensor;    // "out", "lse", "dq", ...
  double error = 0;      // max |ours - f64|
  double naive = 0;      // max |naive same precision - f64|
  double bound = 0;      // 2 * naive + rounding term
  double magnitude = 0;  // max |f64|
  bool pass() const { return error <= bound; }
};

inline ToleranceCheck check_tolerance(const std::string& tensor, const HostArray& ours, const HostArray& naive,
                                      const HostArray& ref64, DType dtype) {
  ToleranceCheck c;
  c.tensor = tensor;
  c.error = max_abs_diff(ours, ref64);
  c.naive = max_abs_diff(naive, ref64);
  c.bound = 2 * c.naive + rounding_term(ref64, dtype);
  if (ref64.dtype() == DType::f32) c.bound += f32_storage_term(ref64);
  for (int64_t i = 0; i < ref64.numel(); ++i)
    if (std::isfinite(ref64.get(i))) c.magnitude = std::max(c.magnitude, std::abs(ref64.get(i)));
  // f32 inputs: the naive f32 error is itself summation-order noise and often 0 or one ulp by chance, so the
  // bound gets a floor of 16 f32 ulps at the tensor's scale (the same floor as tests/test_cpu_attention.cpp).
  if (dtype == DType::f32) c.bound = std::max(c.bound, kF32Floor * (1.0 + c.magnitude));
  return c;
}

}  // namespace omniattn::cli
