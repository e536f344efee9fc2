// DeviceBlockMask: a host BlockMask validated once and copied to a CUDA device in one allocation.
#include <cuda_runtime_api.h>

#include <cstring>
#include <vector>

#include "cuda/common/cuda_check.hpp"
#include "omniattn/device_mask.hpp"
#include "omniattn/error.hpp"

namespace omniattn {

struct DeviceBlockMask::Storage {
  void* data = nullptr;  // every array, 16-byte aligned, one after another
  BlockMaskView view;
  std::vector<int32_t> kv_load;  // view.host_kv_load's entries (host memory)
  ~Storage() {
    if (data) cudaFree(data);  // no check: a destructor must not throw (and may run at process exit)
  }
};

DeviceBlockMask::DeviceBlockMask() = default;
DeviceBlockMask::~DeviceBlockMask() = default;
DeviceBlockMask::DeviceBlockMask(DeviceBlockMask&&) noexcept = default;
DeviceBlockMask& DeviceBlockMask::operator=(DeviceBlockMask&&) noexcept = default;

const BlockMaskView& DeviceBlockMask::view() const {
  if (!storage_) throw Error("DeviceBlockMask", "a mask made by DeviceBlockMask::upload", "an empty DeviceBlockMask");
  return storage_->view;
}

DeviceBlockMask DeviceBlockMask::upload(const BlockMask& mask, int device) {
  const BlockMaskView host = mask.view();
  validate(host);
  // Every int32 array of the view: (host data, count, where the device view keeps its pointer).
  BlockMaskView dev = host;
  struct Piece {
    const int32_t* src;
    int64_t count;
    const int32_t** dst;
  };
  std::vector<Piece> pieces;
  std::vector<TensorView*> tensors;
  for (BlockList* l : {&dev.kv_partial, &dev.kv_full, &dev.q_partial, &dev.q_full})
    for (TensorView* t : {&l->num_blocks, &l->offsets, &l->indices}) tensors.push_back(t);
  std::vector<const int32_t*> tensor_ptrs(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    pieces.push_back({tensors[i]->ptr<const int32_t>(), tensors[i]->numel(), &tensor_ptrs[i]});
  for (I32Array* a : {&dev.element.head_windows, &dev.element.q_document, &dev.element.k_document,
                      &dev.element.token_order, &dev.element.grid_table})
    if (!a->empty()) pieces.push_back({a->data, a->size, &a->data});
  std::vector<size_t> offsets;
  size_t bytes = 0;
  for (const Piece& p : pieces) {
    offsets.push_back(bytes);
    bytes += (static_cast<size_t>(p.count) * 4 + 15) / 16 * 16;
  }
  std::vector<unsigned char> staging(bytes ? bytes : 16, 0);
  for (size_t i = 0; i < pieces.size(); ++i)
    if (pieces[i].count > 0) std::memcpy(staging.data() + offsets[i], pieces[i].src, pieces[i].count * 4);

  detail::cuda::DeviceGuard guard(device);
  DeviceBlockMask out;
  out.storage_ = std::make_unique<Storage>();
  detail::cuda::check(cudaMalloc(&out.storage_->data, staging.size()), "cudaMalloc (DeviceBlockMask)");
  detail::cuda::check(cudaMemcpy(out.storage_->data, staging.data(), staging.size(), cudaMemcpyHostToDevice),
                      "cudaMemcpy (DeviceBlockMask)");
  auto* base = static_cast<unsigned char*>(out.storage_->data);
  for (size_t i = 0; i < pieces.size(); ++i) *pieces[i].dst = reinterpret_cast<const int32_t*>(base + offsets[i]);
  const Device cuda = Device::cuda(device);
  for (size_t i = 0; i < tensors.size(); ++i) {
    tensors[i]->data = const_cast<int32_t*>(tensor_ptrs[i]);
    tensors[i]->device = cuda;
  }
  dev.host_element_mask = nullptr;
  dev.validated = true;
  out.storage_->kv_load = kv_block_load(host);
  dev.host_kv_load = {out.storage_->kv_load.data(), static_cast<int64_t>(out.storage_->kv_load.size())};
  out.storage_->view = dev;
  return out;
}

}  // namespace omniattn
