#pragma once
/// @file device_mask.hpp
/// A BlockMask copied to a CUDA device: what attention calls on CUDA tensors take as options.block_mask.
///
///   omniattn::BlockMask mask = omniattn::sparse::sliding_window(geometry, 1024, 0);   // built on the host
///   omniattn::DeviceBlockMask on_gpu = omniattn::DeviceBlockMask::upload(mask, 0);   // validated, copied once
///   options.block_mask = on_gpu.view();                                             // reused by every call
#include <memory>

#include "omniattn/mask.hpp"

namespace omniattn {

/// Owns device copies of a BlockMask's lists and element-mask arrays. The mask is validated on the host before
/// the copy, so view() is marked `validated` and calls skip the per-call device-to-host check.
class DeviceBlockMask {
 public:
  DeviceBlockMask();
  ~DeviceBlockMask();
  DeviceBlockMask(DeviceBlockMask&&) noexcept;
  DeviceBlockMask& operator=(DeviceBlockMask&&) noexcept;

  /// Validates `mask` and copies it to CUDA device `device` (synchronously, on the legacy default stream).
  /// Throws omniattn::Error when the build has no CUDA or the mask is invalid.
  static DeviceBlockMask upload(const BlockMask& mask, int device);

  /// A view on the device (host_element_mask empty, validated = true); valid while this object lives.
  const BlockMaskView& view() const;

 private:
  struct Storage;
  std::unique_ptr<Storage> storage_;
};

}  // namespace omniattn
