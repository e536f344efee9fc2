#pragma once
// Task parallelism of the CPU kernels: OpenMP threads, dynamic schedule, one scratch workspace per
// thread (tiles only: its size never depends on sequence lengths).
#include <cstdint>

#include "hwy/aligned_allocator.h"

namespace omniattn::detail::cpu {

/// Per-thread scratch: f32 tiles and int32 per-row key ranges.
struct Workspace {
  float* floats = nullptr;
  int32_t* ints = nullptr;
};
struct WorkspaceSize {
  int64_t floats = 0, ints = 0;
};

/// Lays tiles out in a workspace: each range 64-byte aligned (16 floats), offsets in floats.
struct TileCarver {
  int64_t floats = 0;
  int64_t take(int64_t n) {
    const int64_t at = floats;
    floats += (n + 15) / 16 * 16;
    return at;
  }
};

/// Runs fn(task, workspace) for every task in [0, n) on all threads.
template <class Fn>
void parallel_tasks(int64_t n, WorkspaceSize size, Fn&& fn) {
  if (n <= 0) return;
#pragma omp parallel
  {
    auto floats = hwy::AllocateAligned<float>(static_cast<size_t>(size.floats > 0 ? size.floats : 1));
    auto ints = hwy::AllocateAligned<int32_t>(static_cast<size_t>(size.ints > 0 ? size.ints : 1));
    const Workspace ws{floats.get(), ints.get()};
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < n; ++task) fn(task, ws);
  }
}

}  // namespace omniattn::detail::cpu
