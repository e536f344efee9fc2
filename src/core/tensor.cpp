#include <fmt/format.h>

#include "core/validate.hpp"
#include "omniattn/attention.hpp"
#include "omniattn/version.hpp"

namespace omniattn {

std::string to_string(DType t) {
  switch (t) {
    case DType::f64: return "f64";
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
  }
  return "?";
}

std::string to_string(Device d) { return d.is_cpu() ? "cpu" : fmt::format("cuda:{}", d.index); }

std::string to_string(Backend b) {
  switch (b) {
    case Backend::automatic: return "automatic";
    case Backend::reference: return "reference";
    case Backend::cpu: return "cpu";
    case Backend::cuda_sm80: return "cuda_sm80";
    case Backend::cuda_sm90: return "cuda_sm90";
  }
  return "?";
}

namespace {
TensorView make_view(void* data, DType dtype, std::initializer_list<int64_t> shape, Device device) {
  if (shape.size() > TensorView::kMaxDims)
    throw Error("shape", "at most 4 dimensions", std::to_string(shape.size()));
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  t.device = device;
  t.ndim = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t s : shape) t.shape[i++] = s;
  return t;
}
}  // namespace

TensorView TensorView::contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape, Device device) {
  TensorView t = make_view(data, dtype, shape, device);
  int64_t s = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.stride[i] = s;
    s *= std::max<int64_t>(t.shape[i], 1);
  }
  return t;
}

TensorView TensorView::strided(void* data, DType dtype, std::initializer_list<int64_t> shape,
                               std::initializer_list<int64_t> stride, Device device) {
  if (stride.size() != shape.size())
    throw Error("stride", fmt::format("{} strides (one per dimension)", shape.size()), std::to_string(stride.size()));
  TensorView t = make_view(data, dtype, shape, device);
  int i = 0;
  for (int64_t s : stride) t.stride[i++] = s;
  return t;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

std::string TensorView::describe() const {
  return fmt::format("{} {} {}", detail::shape_string(*this), to_string(dtype), to_string(device));
}

}  // namespace omniattn
