#pragma once
// Checks of public arguments; each failure throws omniattn::Error(argument, expected, given).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "omniattn/error.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail {

std::string shape_string(const TensorView& t);
/// Throws Error(argument, expected, given).
[[noreturn]] void fail(const std::string& argument, const std::string& expected, const std::string& given);
/// Throws Error(argument, expected, given) unless `ok`. A macro so that the message arguments (often fmt::format
/// calls) are evaluated only on failure: validation runs on every call, and formatting every message eagerly cost
/// microseconds per call (and per page of a block table).
#define OMNI_REQUIRE(ok, ...)                                 \
  do {                                                        \
    if (!(ok)) ::omniattn::detail::fail(__VA_ARGS__);         \
  } while (0)
void require_defined(const TensorView& t, const char* name);
void require_ndim(const TensorView& t, const char* name, int ndim);
void require_shape(const TensorView& t, const char* name, std::initializer_list<int64_t> shape);
void require_dtype(const TensorView& t, const char* name, DType dtype);
void require_device(const TensorView& t, const char* name, Device device);
void require_inner_contiguous(const TensorView& t, const char* name);
/// Strides non-negative and the largest offset fits int64 (no overflow of offset arithmetic).
void require_addressable(const TensorView& t, const char* name);
/// `written` must not share a byte with `other`.
void require_disjoint(const TensorView& written, const char* written_name, const TensorView& other,
                      const char* other_name);
/// Copies a 1-D i32 tensor to the host (through the device hook for CUDA tensors).
/// `stream`: the cudaStream_t the caller enqueues on; the copy is ordered after its work.
std::vector<int32_t> host_int32(const TensorView& t, const char* name, void* stream = nullptr);

/// Copy of device memory to the host; set by the CUDA module at load time, null without CUDA.
using DeviceToHostFn = void (*)(void* host, const void* device, int64_t bytes, int device_index, void* stream);
extern DeviceToHostFn g_device_to_host;

}  // namespace omniattn::detail
