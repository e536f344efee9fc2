#include "bench_memory.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace omniattn::bench {
namespace {

cudaMemPool_t default_pool() {
  int device = 0;
  cudaMemPool_t pool = nullptr;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetDefaultMemPool(&pool, device) != cudaSuccess)
    return nullptr;
  return pool;
}

std::size_t pool_attribute(cudaMemPool_t pool, cudaMemPoolAttr attr) {
  uint64_t value = 0;
  if (pool == nullptr || cudaMemPoolGetAttribute(pool, attr, &value) != cudaSuccess) return 0;
  return static_cast<std::size_t>(value);
}

std::size_t free_device_bytes() {
  std::size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) std::fprintf(stderr, "cudaMemGetInfo failed\n");
  return free;
}

}  // namespace

void MemoryProbe::start() {
  cudaDeviceSynchronize();
  cudaMemPool_t pool = default_pool();
  uint64_t zero = 0;  // the high-water mark can only be reset to zero (it restarts from the current use)
  if (pool != nullptr) cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero);
  reserved_before_ = pool_attribute(pool, cudaMemPoolAttrReservedMemCurrent);
  free_before_ = free_device_bytes();
}

std::size_t MemoryProbe::library_bytes() const {
  cudaDeviceSynchronize();
  cudaMemPool_t pool = default_pool();
  const std::size_t used = std::max(pool_attribute(pool, cudaMemPoolAttrUsedMemHigh),
                                    pool_attribute(pool, cudaMemPoolAttrUsedMemCurrent));
  // The pool may also shrink (release threshold 0: unused reserve goes back at synchronization).
  const int64_t reserved_growth =
      int64_t(pool_attribute(pool, cudaMemPoolAttrReservedMemCurrent)) - int64_t(reserved_before_);
  const int64_t dropped = int64_t(free_before_) - int64_t(free_device_bytes());
  return used + std::size_t(std::max<int64_t>(0, dropped - std::max<int64_t>(0, reserved_growth)));
}

}  // namespace omniattn::bench
