#include "dlpack_view.hpp"

#include <string>

namespace nb = nanobind;

namespace omniattn::python {
namespace {

DType to_dtype(nb::dlpack::dtype t, const char* name) {
  using Code = nb::dlpack::dtype_code;
  if (t.lanes == 1) {
    if (t.code == static_cast<uint8_t>(Code::Float) && t.bits == 64) return DType::f64;
    if (t.code == static_cast<uint8_t>(Code::Float) && t.bits == 32) return DType::f32;
    if (t.code == static_cast<uint8_t>(Code::Float) && t.bits == 16) return DType::f16;
    if (t.code == static_cast<uint8_t>(Code::Bfloat) && t.bits == 16) return DType::bf16;
    if (t.code == static_cast<uint8_t>(Code::Int) && t.bits == 32) return DType::i32;
  }
  throw nb::type_error((std::string(name) + ": expected dtype float64, float32, float16, bfloat16 or int32, given "
                        "DLPack dtype code " + std::to_string(t.code) + " with " + std::to_string(t.bits) + " bits")
                           .c_str());
}

Device to_device(int type, int id, const char* name) {
  // DLPack device types: kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3 (pinned host memory).
  if (type == 1 || type == 3) return Device::cpu();
  if (type == 2) return Device::cuda(id);
  throw nb::value_error((std::string(name) + ": expected a CPU or CUDA tensor, given DLPack device type " +
                         std::to_string(type)).c_str());
}

template <class A>
TensorView convert(const A& a, const char* name) {
  TensorView t;
  if (a.ndim() > static_cast<size_t>(TensorView::kMaxDims))
    throw nb::value_error((std::string(name) + ": expected at most 4 dimensions, given " +
                           std::to_string(a.ndim())).c_str());
  t.data = const_cast<void*>(static_cast<const void*>(a.data()));
  t.dtype = to_dtype(a.dtype(), name);
  t.device = to_device(a.device_type(), a.device_id(), name);
  t.ndim = static_cast<int>(a.ndim());
  for (int i = 0; i < t.ndim; ++i) {
    t.shape[i] = static_cast<int64_t>(a.shape(i));
    t.stride[i] = a.stride(i);  // DLPack strides are in elements, as TensorView's
  }
  return t;
}

}  // namespace

TensorView to_view(const Array& a, const char* name) { return convert(a, name); }
TensorView to_view(const OutArray& a, const char* name) { return convert(a, name); }
std::optional<TensorView> to_view(const std::optional<Array>& a, const char* name) {
  if (!a) return std::nullopt;
  return convert(*a, name);
}
std::optional<TensorView> to_view(const std::optional<OutArray>& a, const char* name) {
  if (!a) return std::nullopt;
  return convert(*a, name);
}

}  // namespace omniattn::python
