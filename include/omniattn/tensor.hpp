#pragma once
/// @file tensor.hpp
/// TensorView: a non-owning view of a strided tensor on the CPU or a CUDA device.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace omniattn {

/// Element types. Attention inputs are f32/f16/bf16 (f64 on the reference backend); indices are i32.
enum class DType : uint8_t { f64, f32, f16, bf16, i32 };

/// Size of one element in bytes.
constexpr int64_t dtype_size(DType t) {
  switch (t) {
    case DType::f64: return 8;
    case DType::f32: case DType::i32: return 4;
    default: return 2;
  }
}
/// Lower-case name ("bf16").
std::string to_string(DType t);

/// Where a tensor lives: the host, or CUDA device `index`.
struct Device {
  enum class Kind : uint8_t { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;
  static constexpr Device cpu() { return {Kind::cpu, 0}; }
  static constexpr Device cuda(int i = 0) { return {Kind::cuda, i}; }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  friend bool operator==(const Device&, const Device&) = default;
};
/// "cpu" or "cuda:N".
std::string to_string(Device d);

/// A non-owning strided view. Strides are in elements. Up to 4 dimensions.
struct TensorView {
  static constexpr int kMaxDims = 4;
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> stride{};

  /// A contiguous (row-major) view of `data` with the given shape.
  static TensorView contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                               Device device = Device::cpu());
  /// Same, with explicit strides (in elements).
  static TensorView strided(void* data, DType dtype, std::initializer_list<int64_t> shape,
                            std::initializer_list<int64_t> stride, Device device = Device::cpu());

  int64_t numel() const;
  int64_t size(int dim) const { return shape[dim]; }
  /// Pointer to element `offset` (in elements) from data.
  template <class T> T* ptr(int64_t offset = 0) const { return static_cast<T*>(data) + offset; }
  bool defined() const { return data != nullptr || numel() == 0; }
  /// "[2, 128, 16, 64] bf16 cuda:0".
  std::string describe() const;
};

}  // namespace omniattn
