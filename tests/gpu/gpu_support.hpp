#pragma once
// GPU test support: device copies of host tensors in any strided layout, NaN poison, CUDA checks.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "support/test_util.hpp"

namespace omniattn::testing {

#define OMNI_CUDA_OK(call)                                                                     \
  do {                                                                                         \
    const cudaError_t omni_status_ = (call);                                                   \
    ASSERT_EQ(omni_status_, cudaSuccess) << #call << ": " << cudaGetErrorString(omni_status_); \
  } while (0)

/// Compute capability major of device 0, or -1 without a CUDA device.
inline int device0_major() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return -1;
  }
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  return major;
}
/// True when a device of compute capability >= 8.0 is present (GPU tests skip otherwise).
inline bool have_sm80_gpu() { return device0_major() >= 8; }
#define OMNI_REQUIRE_GPU() \
  if (!have_sm80_gpu()) GTEST_SKIP() << "no CUDA device of compute capability >= 8.0"

/// True when device 0 is a Hopper GPU (compute capability 9.x).
inline bool have_hopper() { return device0_major() == 9; }
#define OMNI_REQUIRE_HOPPER() \
  if (!have_hopper() || !OMNIATTN_WITH_SM90) GTEST_SKIP() << "no Hopper GPU or sm_90a not compiled"

/// A HostTensor with a runtime shape (HostTensor's constructor takes an initializer list).
inline HostTensor host_tensor(DType dtype, const TensorView& like) {
  const auto& s = like.shape;
  switch (like.ndim) {
    case 1:
      return HostTensor(dtype, {s[0]});
    case 2:
      return HostTensor(dtype, {s[0], s[1]});
    case 3:
      return HostTensor(dtype, {s[0], s[1], s[2]});
    default:
      return HostTensor(dtype, {s[0], s[1], s[2], s[3]});
  }
}

/// Calls f(contiguous_index, strided_offset) for every element of a view's shape.
template <class F>
void for_each_element(const TensorView& v, F&& f) {
  std::array<int64_t, 4> idx{};
  const int64_t n = v.numel();
  for (int64_t linear = 0; linear < n; ++linear) {
    int64_t rest = linear, offset = 0;
    for (int d = v.ndim - 1; d >= 0; --d) {
      idx[d] = rest % v.shape[d];
      rest /= v.shape[d];
      offset += idx[d] * v.stride[d];
    }
    f(linear, offset);
  }
}

/// Owns device memory laid out with arbitrary strides; `view` is what the library sees.
class DeviceTensor {
 public:
  DeviceTensor() = default;
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
  DeviceTensor(DeviceTensor&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_), view_(o.view_) { o.ptr_ = nullptr; }
  DeviceTensor& operator=(DeviceTensor&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    std::swap(view_, o.view_);
    return *this;
  }
  ~DeviceTensor() {
    if (ptr_) cudaFree(ptr_);
  }

  /// Uninitialized (NaN-poisoned) device tensor shaped like `like`; `strides` empty = contiguous.
  /// `storage_elements` is the size of the allocation (>= what the strides reach).
  static DeviceTensor allocate(DType dtype, const TensorView& like, std::vector<int64_t> strides = {},
                               int64_t storage_elements = -1) {
    DeviceTensor t;
    t.view_ = like;
    t.view_.dtype = dtype;
    t.view_.device = Device::cuda(0);
    if (strides.empty()) {
      int64_t s = 1;
      for (int d = like.ndim - 1; d >= 0; --d) {
        t.view_.stride[d] = s;
        s *= like.shape[d];
      }
      if (storage_elements < 0) storage_elements = s;
    } else {
      for (int d = 0; d < like.ndim; ++d) t.view_.stride[d] = strides[d];
    }
    if (storage_elements < 0) {
      storage_elements = 1;
      for (int d = 0; d < like.ndim; ++d) storage_elements += (like.shape[d] - 1) * t.view_.stride[d];
    }
    t.bytes_ = static_cast<size_t>(std::max<int64_t>(storage_elements, 1) * dtype_size(dtype));
    EXPECT_EQ(cudaMalloc(&t.ptr_, t.bytes_), cudaSuccess);
    t.view_.data = t.ptr_;
    t.poison();
    return t;
  }
  /// Device copy of `h` (same dtype) in the given layout.
  static DeviceTensor upload(const HostTensor& h, std::vector<int64_t> strides = {}, int64_t storage_elements = -1) {
    DeviceTensor t = allocate(h.dtype(), h.view(), std::move(strides), storage_elements);
    std::vector<uint8_t> staging(t.bytes_, 0xFF);
    const int64_t es = dtype_size(h.dtype());
    const auto* src = static_cast<const uint8_t*>(h.view().data);
    for_each_element(
        t.view_, [&](int64_t linear, int64_t offset) { std::memcpy(&staging[offset * es], src + linear * es, es); });
    EXPECT_EQ(cudaMemcpy(t.ptr_, staging.data(), t.bytes_, cudaMemcpyHostToDevice), cudaSuccess);
    return t;
  }
  /// Contiguous host copy.
  HostTensor download() const {
    HostTensor h = host_tensor(view_.dtype, view_);
    std::vector<uint8_t> staging(bytes_);
    EXPECT_EQ(cudaMemcpy(staging.data(), ptr_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    const int64_t es = dtype_size(view_.dtype);
    auto* dst = static_cast<uint8_t*>(h.view().data);
    for_each_element(
        view_, [&](int64_t linear, int64_t offset) { std::memcpy(dst + linear * es, &staging[offset * es], es); });
    return h;
  }
  /// 0xFF bytes: NaN in bf16, f16 and f32.
  void poison() { EXPECT_EQ(cudaMemset(ptr_, 0xFF, bytes_), cudaSuccess); }

  const TensorView& view() const { return view_; }
  operator const TensorView&() const { return view_; }  // NOLINT

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  TensorView view_;
};

/// Byte-wise equality of two host tensors (the race check: two runs on the same inputs).
inline bool bitwise_equal(const HostTensor& a, const HostTensor& b) {
  return a.numel() == b.numel() && a.dtype() == b.dtype() &&
         std::memcmp(a.view().data, b.view().data, static_cast<size_t>(a.numel() * dtype_size(a.dtype()))) == 0;
}

}  // namespace omniattn::testing
