#pragma once
// Test support: owning host tensors, fresh random inputs, NaN poison, and the tolerance rule.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "omniattn/omniattn.hpp"

namespace omniattn::testing {

/// A host tensor that owns its (contiguous) storage.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DType dtype, std::initializer_list<int64_t> shape)
      : storage_(bytes_for(dtype, shape)), view_(TensorView::contiguous(storage_.data(), dtype, shape)) {}
  HostTensor(const HostTensor& o) : storage_(o.storage_), view_(o.view_) { view_.data = storage_.data(); }
  HostTensor& operator=(const HostTensor& o) {
    storage_ = o.storage_;
    view_ = o.view_;
    view_.data = storage_.data();
    return *this;
  }
  const TensorView& view() const { return view_; }
  operator const TensorView&() const { return view_; }  // NOLINT: tensors pass where views are expected
  int64_t numel() const { return view_.numel(); }
  DType dtype() const { return view_.dtype; }
  double get(int64_t i) const { return detail::load_as_double(view_.data, view_.dtype, i); }
  void set(int64_t i, double x) { detail::store_from_double(view_.data, view_.dtype, i, x); }
  /// Same shape, converted to `dtype` (exactly when widening).
  HostTensor to(DType dtype) const {
    HostTensor t;
    t.view_ = view_;
    t.view_.dtype = dtype;
    t.storage_.assign(static_cast<size_t>(numel() * dtype_size(dtype)) + 1, 0);
    t.view_.data = t.storage_.data();
    for (int64_t i = 0; i < numel(); ++i) t.set(i, get(i));
    return t;
  }

 private:
  static size_t bytes_for(DType dtype, std::initializer_list<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return static_cast<size_t>(n * dtype_size(dtype)) + 1;  // +1: never a null pointer
  }
  std::vector<uint8_t> storage_;
  TensorView view_;
};

/// A generator seeded freshly for every test; the seed is printed so a failure can be replayed
/// (set OMNIATTN_TEST_SEED to replay).
inline std::mt19937_64& rng() {
  static std::mt19937_64 gen = [] {
    uint64_t seed = std::random_device{}();
    if (const char* s = std::getenv("OMNIATTN_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
    std::printf("[omniattn] test seed %llu (OMNIATTN_TEST_SEED to replay)\n", static_cast<unsigned long long>(seed));
    return std::mt19937_64(seed);
  }();
  return gen;
}

/// Fills with N(mean, stddev) values (rounded to the tensor's dtype).
inline void fill_normal(HostTensor& t, double stddev = 1.0, double mean = 0.0) {
  std::normal_distribution<double> dist(mean, stddev);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, dist(rng()));
}
inline HostTensor random_normal(DType dtype, std::initializer_list<int64_t> shape, double stddev = 1.0) {
  HostTensor t(dtype, shape);
  fill_normal(t, stddev);
  return t;
}
/// Fills with NaN so that any element a kernel fails to write is caught.
inline void poison(HostTensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, std::nan(""));
}

inline double max_abs_diff(const HostTensor& a, const HostTensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get(i), y = b.get(i);
    if (x == y) continue;  // also equal infinities (LSE of empty rows)
    const double d = std::abs(x - y);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

/// FlashAttention's rounding term: twice the error of rounding the float64 result to `dtype`,
/// measured at magnitude |ref| + 0.3 (as flash-attn's tests do).
inline double rounding_term(const HostTensor& ref, DType dtype) {
  double m = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double x = ref.get(i);
    if (!std::isfinite(x)) continue;
    const double off = std::copysign(0.3, x);  // magnitude |x| + 0.3 whatever the sign
    const double r = detail::round_to(dtype, detail::round_to(dtype, x + off) - off);
    m = std::max(m, std::abs(r - x));
  }
  return 2 * m;
}

/// The tolerance rule: err(ours) <= 2 * err(same-precision naive) + rounding term, against float64.
/// Also fails on any NaN in `ours` (poisoned elements that were never written).
inline ::testing::AssertionResult within_tolerance(const HostTensor& ours, const HostTensor& naive,
                                                   const HostTensor& ref64, DType dtype, const char* what) {
  const double err = max_abs_diff(ours, ref64);
  const double naive_err = max_abs_diff(naive, ref64);
  const double bound = 2 * naive_err + rounding_term(ref64, dtype);
  if (err <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": max |ours - f64| = " << err << " > bound " << bound
                                       << " (2 * naive error " << naive_err << " + rounding term)";
}

/// A GridMask of `kind` over `shape` (one entry per axis) with `kernel` per axis (none: 1); the caller sets dilation,
/// stride and causal axes.
inline GridMask grid_rule(GridMask::Kind kind, std::initializer_list<int64_t> shape,
                          std::initializer_list<int64_t> kernel = {}) {
  GridMask g;
  g.kind = kind;
  g.ndim = static_cast<int>(shape.size());
  int a = 0;
  for (int64_t x : shape) g.shape[a++] = x;
  a = 0;
  for (int64_t k : kernel) g.kernel[a++] = k;
  return g;
}

}  // namespace omniattn::testing
