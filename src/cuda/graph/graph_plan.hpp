#pragma once
// Building a SplitPlan (graph_split.hpp) on the device: a count per row, CUB's inclusive sum, the item table.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/graph/graph_split.hpp"

namespace omniattn::detail::cuda::graph {

/// Device buffers of one plan: counts and totals [rows] u64, items [max_items], slot_rows [max_slots], CUB scratch.
struct PlanBuffers {
  uint64_t *counts = nullptr, *totals = nullptr;
  SplitItem* items = nullptr;
  int32_t* slot_rows = nullptr;
  void* scratch = nullptr;
  std::size_t scratch_bytes = 0;
};

/// CUB scratch bytes of build_plan over `rows` rows.
std::size_t plan_scratch_bytes(int64_t rows);

/// The plan of `rows` (> 0) CSR rows with validated `offsets`, `per` entries per item; stream-ordered, no host sync.
SplitPlan build_plan(const int32_t* offsets, int64_t rows, int32_t per, const PlanBuffers& buffers,
                     cudaStream_t stream);

}  // namespace omniattn::detail::cuda::graph
