// DeviceBlockMask in a build without CUDA: upload() says so.
#include "omniattn/device_mask.hpp"
#include "omniattn/error.hpp"

#if !OMNIATTN_WITH_CUDA
namespace omniattn {

struct DeviceBlockMask::Storage {
  BlockMaskView view;
};
DeviceBlockMask::DeviceBlockMask() = default;
DeviceBlockMask::~DeviceBlockMask() = default;
DeviceBlockMask::DeviceBlockMask(DeviceBlockMask&&) noexcept = default;
DeviceBlockMask& DeviceBlockMask::operator=(DeviceBlockMask&&) noexcept = default;

const BlockMaskView& DeviceBlockMask::view() const {
  throw Error("DeviceBlockMask", "a mask made by DeviceBlockMask::upload", "an empty DeviceBlockMask");
}

DeviceBlockMask DeviceBlockMask::upload(const BlockMask&, int) {
  throw Error("DeviceBlockMask::upload", "a build with CUDA", "a CPU-only build of omniattn");
}

}  // namespace omniattn
#endif
