#pragma once
// Owning host tensors for the CLI: contiguous storage of any omniattn dtype, element access as double,
// random fills, and row slices (the benchmark checks accuracy on the last rows of a large problem).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.hpp"
#include "omniattn/omniattn.hpp"

namespace omniattn::cli {

/// A contiguous host tensor that owns its bytes. Copies deep-copy the data.
class HostArray {
 public:
  HostArray() = default;
  HostArray(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
    // +1 byte: an empty tensor still has a non-null, unique address.
    bytes_.assign(static_cast<size_t>(numel() * dtype_size(dtype_)) + 1, 0);
  }

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape_) n *= s;
    return n;
  }
  int64_t bytes() const { return numel() * dtype_size(dtype_); }
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }

  /// A contiguous view (the data stays owned here).
  TensorView view() const { return view_of(const_cast<uint8_t*>(bytes_.data()), dtype_, shape_); }

  double get(int64_t i) const { return detail::load_as_double(bytes_.data(), dtype_, i); }
  void set(int64_t i, double x) { detail::store_from_double(bytes_.data(), dtype_, i, x); }

  /// Same values converted to `dtype` (exact when widening).
  HostArray to(DType dtype) const {
    HostArray t(dtype, shape_);
    for (int64_t i = 0; i < numel(); ++i) t.set(i, get(i));
    return t;
  }

  /// Rows [first, first + count) of dimension `dim`, copied out (all other dims whole).
  HostArray slice(int dim, int64_t first, int64_t count) const {
    std::vector<int64_t> shape = shape_;
    shape[dim] = count;
    HostArray t(dtype_, shape);
    int64_t outer = 1, inner = dtype_size(dtype_);
    for (int i = 0; i < dim; ++i) outer *= shape_[i];
    for (size_t i = dim + 1; i < shape_.size(); ++i) inner *= shape_[i];
    const auto* src = bytes_.data();
    auto* dst = static_cast<uint8_t*>(t.data());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + o * count * inner, src + (o * shape_[dim] + first) * inner, static_cast<size_t>(count * inner));
    return t;
  }

  /// Fills with N(0, stddev) values rounded to the dtype.
  void fill_normal(std::mt19937_64& gen, double stddev = 1.0) {
    std::normal_distribution<double> dist(0.0, stddev);
    for (int64_t i = 0; i < numel(); ++i) set(i, dist(gen));
  }
  /// Fills with NaN so that an element a backend forgets to write shows up as an error.
  void fill_nan() {
    for (int64_t i = 0; i < numel(); ++i) set(i, std::numeric_limits<double>::quiet_NaN());
  }

  static TensorView view_of(void* data, DType dtype, const std::vector<int64_t>& shape, Device device = Device::cpu()) {
    TensorView v;
    v.data = data;
    v.dtype = dtype;
    v.device = device;
    v.ndim = static_cast<int>(shape.size());
    int64_t stride = 1;
    for (int i = v.ndim - 1; i >= 0; --i) {
      v.shape[i] = shape[i];
      v.stride[i] = stride;
      stride *= std::max<int64_t>(shape[i], 1);
    }
    return v;
  }

 private:
  DType dtype_ = DType::f32;
  std::vector<int64_t> shape_{0};  // a default array is empty
  std::vector<uint8_t> bytes_;
};

}  // namespace omniattn::cli
