#include "mask_object.hpp"

namespace omniattn::python {

BlockMaskView PyBlockMask::view_for(Device device) {
  if (device.is_cpu()) return mask.view();
  auto it = on_device.find(device.index);
  // upload() validates on the host once; its view is marked validated, so calls skip the per-call check.
  if (it == on_device.end()) it = on_device.emplace(device.index, DeviceBlockMask::upload(mask, device.index)).first;
  return it->second.view();
}

}  // namespace omniattn::python
