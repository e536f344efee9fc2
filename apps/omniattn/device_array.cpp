#include "device_array.hpp"

#include <fmt/format.h>

#include <cstdlib>

#if OMNIATTN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace omniattn::cli {

namespace {
void free_device(void* ptr) {
#if OMNIATTN_WITH_CUDA
  if (ptr) cudaFree(ptr);
#else
  (void)ptr;
#endif
}
}  // namespace

#if OMNIATTN_WITH_CUDA
namespace {
void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error("device", fmt::format("{} to succeed", what), cudaGetErrorString(status));
}
}  // namespace
#endif

DeviceArray::DeviceArray(const HostArray& host, Device device)
    : device_(device), dtype_(host.dtype()), shape_(host.shape()) {
  if (device.is_cpu()) {
    host_ = host;
    return;
  }
#if OMNIATTN_WITH_CUDA
  check_cuda(cudaSetDevice(device.index), "cudaSetDevice");
  check_cuda(cudaMalloc(&device_ptr_, static_cast<size_t>(host.bytes()) + 16), "cudaMalloc");
  check_cuda(cudaMemcpy(device_ptr_, host.data(), static_cast<size_t>(host.bytes()), cudaMemcpyHostToDevice),
             "cudaMemcpy to the device");
#else
  throw Error("--device", "cpu (this build has no CUDA)", to_string(device));
#endif
}

DeviceArray& DeviceArray::operator=(DeviceArray&& o) noexcept {
  if (this == &o) return *this;
  free_device(device_ptr_);
  device_ = o.device_;
  dtype_ = o.dtype_;
  shape_ = std::move(o.shape_);
  host_ = std::move(o.host_);
  device_ptr_ = std::exchange(o.device_ptr_, nullptr);
  return *this;
}

DeviceArray::~DeviceArray() { free_device(device_ptr_); }

TensorView DeviceArray::view() const {
  if (device_.is_cpu()) return host_.view();
  return HostArray::view_of(device_ptr_, dtype_, shape_, device_);
}

HostArray DeviceArray::download() const {
  if (device_.is_cpu()) return host_;
  HostArray out(dtype_, shape_);
#if OMNIATTN_WITH_CUDA
  check_cuda(cudaSetDevice(device_.index), "cudaSetDevice");
  check_cuda(cudaMemcpy(out.data(), device_ptr_, static_cast<size_t>(out.bytes()), cudaMemcpyDeviceToHost),
             "cudaMemcpy to the host");
#endif
  return out;
}

void synchronize(Device device) {
#if OMNIATTN_WITH_CUDA
  if (device.is_cuda()) {
    check_cuda(cudaSetDevice(device.index), "cudaSetDevice");
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (a kernel failed)");
  }
#else
  (void)device;
#endif
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name.rfind("cuda", 0) == 0) {
    int index = 0;
    if (name.size() > 4) {
      if (name[4] != ':' || name.size() == 5) throw Error("--device", "cpu, cuda or cuda:N", name);
      char* end = nullptr;
      index = static_cast<int>(std::strtol(name.c_str() + 5, &end, 10));
      if (*end != '\0' || index < 0) throw Error("--device", "cpu, cuda or cuda:N", name);
    }
    const int count = cuda_device_count();
    if (index >= count)
      throw Error(
          "--device",
          count == 0 ? std::string("cpu (no CUDA device here)") : fmt::format("a CUDA device index below {}", count),
          name);
    return Device::cuda(index);
  }
  throw Error("--device", "cpu, cuda or cuda:N", name);
}

int cuda_device_count() {
#if OMNIATTN_WITH_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

CudaDeviceInfo cuda_device_info(int index) {
  CudaDeviceInfo info;
#if OMNIATTN_WITH_CUDA
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) == cudaSuccess) {
    info.name = prop.name;
    info.major = prop.major;
    info.minor = prop.minor;
    info.sm_count = prop.multiProcessorCount;
    info.memory_gib = static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
  }
#else
  (void)index;
#endif
  return info;
}

}  // namespace omniattn::cli
