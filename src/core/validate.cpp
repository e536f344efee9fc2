#include "core/validate.hpp"

#include <fmt/format.h>

#include <cstring>

namespace omniattn::detail {

DeviceToHostFn g_device_to_host = nullptr;

std::string shape_string(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

void fail(const std::string& argument, const std::string& expected, const std::string& given) {
  throw Error(argument, expected, given);
}

void require_defined(const TensorView& t, const char* name) {
  OMNI_REQUIRE(t.ndim >= 0 && t.ndim <= TensorView::kMaxDims, name, "0 to 4 dimensions", std::to_string(t.ndim));
  for (int i = 0; i < t.ndim; ++i)
    OMNI_REQUIRE(t.shape[i] >= 0, name, "non-negative sizes", shape_string(t));
  OMNI_REQUIRE(t.data != nullptr || t.numel() == 0, name, "a data pointer", "null");
}

void require_ndim(const TensorView& t, const char* name, int ndim) {
  OMNI_REQUIRE(t.ndim == ndim, name, fmt::format("{} dimensions", ndim), fmt::format("{} ({})", t.ndim, shape_string(t)));
}

void require_shape(const TensorView& t, const char* name, std::initializer_list<int64_t> shape) {
  TensorView want;
  want.ndim = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t s : shape) want.shape[i++] = s;
  bool same = t.ndim == want.ndim;
  for (int d = 0; same && d < t.ndim; ++d) same = t.shape[d] == want.shape[d];
  OMNI_REQUIRE(same, name, "shape " + shape_string(want), shape_string(t));
}

void require_dtype(const TensorView& t, const char* name, DType dtype) {
  OMNI_REQUIRE(t.dtype == dtype, name, "dtype " + to_string(dtype), to_string(t.dtype));
}

void require_device(const TensorView& t, const char* name, Device device) {
  OMNI_REQUIRE(t.device == device, name, "device " + to_string(device), to_string(t.device));
}

void require_inner_contiguous(const TensorView& t, const char* name) {
  if (t.ndim == 0 || t.shape[t.ndim - 1] <= 1) return;
  OMNI_REQUIRE(t.stride[t.ndim - 1] == 1, name, "last dimension contiguous (stride 1)",
          fmt::format("stride {}", t.stride[t.ndim - 1]));
}

void require_addressable(const TensorView& t, const char* name) {
  int64_t max_offset = 0;
  for (int i = 0; i < t.ndim; ++i) {
    OMNI_REQUIRE(t.stride[i] >= 0, name, "non-negative strides", fmt::format("stride {} at dim {}", t.stride[i], i));
    if (t.shape[i] == 0) return;
    int64_t term = 0;
    bool overflow = __builtin_mul_overflow(t.shape[i] - 1, t.stride[i], &term) ||
                    __builtin_add_overflow(max_offset, term, &max_offset);
    int64_t bytes = 0;
    overflow = overflow || __builtin_mul_overflow(max_offset + 1, dtype_size(t.dtype), &bytes);
    OMNI_REQUIRE(!overflow, name, "offsets that fit in int64", shape_string(t) + " with its strides overflows");
  }
}

namespace {
// [first byte, one past the last byte] of the elements a view can reach.
std::pair<uintptr_t, uintptr_t> byte_range(const TensorView& t) {
  int64_t max_offset = 0;
  for (int i = 0; i < t.ndim; ++i) max_offset += (t.shape[i] - 1) * t.stride[i];
  const auto base = reinterpret_cast<uintptr_t>(t.data);
  return {base, base + static_cast<uintptr_t>((max_offset + 1) * dtype_size(t.dtype))};
}
}  // namespace

void require_disjoint(const TensorView& written, const char* written_name, const TensorView& other,
                      const char* other_name) {
  if (written.numel() == 0 || other.numel() == 0 || !(written.device == other.device)) return;
  auto [a0, a1] = byte_range(written);
  auto [b0, b1] = byte_range(other);
  OMNI_REQUIRE(a1 <= b0 || b1 <= a0, written_name, fmt::format("memory disjoint from {}", other_name),
          "an overlapping view");
}

std::vector<int32_t> host_int32(const TensorView& t, const char* name, void* stream) {
  require_dtype(t, name, DType::i32);
  require_ndim(t, name, 1);
  std::vector<int32_t> host(static_cast<size_t>(t.shape[0]));
  if (host.empty()) return host;
  if (t.device.is_cpu()) {
    for (int64_t i = 0; i < t.shape[0]; ++i) host[i] = t.ptr<const int32_t>()[i * t.stride[0]];
  } else {
    OMNI_REQUIRE(g_device_to_host != nullptr, name, "a CPU tensor (this build has no CUDA)", to_string(t.device));
    OMNI_REQUIRE(t.stride[0] == 1, name, "a contiguous tensor", fmt::format("stride {}", t.stride[0]));
    g_device_to_host(host.data(), t.data, t.shape[0] * 4, t.device.index, stream);
  }
  return host;
}

}  // namespace omniattn::detail
