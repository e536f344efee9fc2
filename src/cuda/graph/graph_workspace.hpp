#pragma once
// A grow-only device workspace per device for graph attention's temporaries (validation record, row-start counts,
// the transposed graph, CUB's scratch, per-row statistics). The caller holds lock() from acquire() until its kernels
// are enqueued: the next call reuses the memory, and stream order keeps each call's kernels on their own data.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuda/common/device_workspace.hpp"

namespace omniattn::detail::cuda::graph {

class GraphWorkspace : public DeviceWorkspace {
 public:
  /// What a call keeps in it: metadata (check record, transposition, plans, statistics), or split rows' partials.
  enum class Use { metadata = 0, partials = 1 };
  static GraphWorkspace& of_device(int device, Use use = Use::metadata) {
    return workspace_of_device<GraphWorkspace, 2>(device, static_cast<int>(use));
  }
};

/// Carves 256-byte aligned pieces out of one allocation: a first pass sizes (base null), a second places.
class WorkspaceLayout {
 public:
  explicit WorkspaceLayout(void* base = nullptr) : base_(static_cast<char*>(base)) {}
  template <class T>
  T* take(std::size_t count) {
    const std::size_t at = (used_ + 255) / 256 * 256;
    used_ = at + count * sizeof(T);
    return base_ == nullptr ? nullptr : reinterpret_cast<T*>(base_ + at);
  }
  std::size_t bytes() const { return used_; }

 private:
  char* base_;
  std::size_t used_ = 0;
};

}  // namespace omniattn::detail::cuda::graph
