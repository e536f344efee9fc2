// Split plans on the device (graph_plan.hpp): plan_count per row, an inclusive sum of the packed (items, slots)
// counts (one 64-bit scan gives both prefix sums), plan_fill per row.
#include "cuda/graph/graph_plan.hpp"

#include <cub/device/device_scan.cuh>

#include "cuda/common/cuda_check.hpp"
#include "cuda/graph/graph_split.cuh"

namespace omniattn::detail::cuda::graph {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

__global__ void plan_count_kernel(const int32_t* offsets, int64_t rows, int32_t per, uint64_t* counts) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r < rows) counts[r] = plan_count(offsets, r, per);
}

__global__ void plan_fill_kernel(const int32_t* offsets, int64_t rows, int32_t per, const uint64_t* totals,
                                 SplitItem* items, int32_t* slot_rows) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r < rows) plan_fill(offsets, r, per, totals, items, slot_rows);
}

}  // namespace

std::size_t plan_scratch_bytes(int64_t rows) {
  std::size_t bytes = 0;
  check(cub::DeviceScan::InclusiveSum(nullptr, bytes, static_cast<const uint64_t*>(nullptr),
                                      static_cast<uint64_t*>(nullptr), static_cast<int>(rows)),
        "cub::DeviceScan::InclusiveSum (size)");
  return bytes > 0 ? bytes : 1;
}

SplitPlan build_plan(const int32_t* offsets, int64_t rows, int32_t per, const PlanBuffers& b, cudaStream_t stream) {
  plan_count_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(offsets, rows, per, b.counts);
  check_launch("graph attention: plan_count_kernel");
  std::size_t bytes = b.scratch_bytes;
  check(cub::DeviceScan::InclusiveSum(b.scratch, bytes, static_cast<const uint64_t*>(b.counts), b.totals,
                                      static_cast<int>(rows), stream),
        "cub::DeviceScan::InclusiveSum (graph split plan)");
  plan_fill_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(offsets, rows, per, b.totals, b.items, b.slot_rows);
  check_launch("graph attention: plan_fill_kernel");
  return SplitPlan{b.items, b.totals, b.slot_rows, rows, per};
}

}  // namespace omniattn::detail::cuda::graph
