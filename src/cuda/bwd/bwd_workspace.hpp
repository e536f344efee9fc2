#pragma once
// The backward's per-device workspace: the f32 dQ accumulator, row statistics and semaphores (sizes:
// BwdLaunch::workspace_bytes). Lock and acquire as DeviceWorkspace says.
#include "cuda/common/device_workspace.hpp"

namespace omniattn::detail::cuda {

class BwdWorkspace : public DeviceWorkspace {
 public:
  static BwdWorkspace& of_device(int device) { return workspace_of_device<BwdWorkspace>(device); }
};

}  // namespace omniattn::detail::cuda
