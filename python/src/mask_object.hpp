#pragma once
// The object behind omniattn.BlockMask: a host BlockMask plus its copies on CUDA devices, made on first use on a
// device and kept while the Python object lives (a mask is built once and used by many calls).
#include <map>
#include <utility>

#include "omniattn/device_mask.hpp"
#include "omniattn/mask.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::python {

struct PyBlockMask {
  explicit PyBlockMask(BlockMask m) : mask(std::move(m)) {}
  PyBlockMask(PyBlockMask&&) = default;  // move-only: the device copies own device memory
  PyBlockMask(const PyBlockMask&) = delete;

  BlockMask mask;
  std::map<int, DeviceBlockMask> on_device;  // CUDA device index -> validated copy

  /// The view for a call on `device`: the host view, or the (cached) device copy's. Called with the GIL held,
  /// so the cache needs no lock.
  BlockMaskView view_for(Device device);
};

}  // namespace omniattn::python
