#pragma once
// Per-thread bodies of the split planner (graph_plan.cu) and the items' lookup in the warps.
#include <cstdint>

#include "cuda/graph/graph_split.hpp"

namespace omniattn::detail::cuda::graph {

/// Row r's (items << 32 | partial slots): ceil(d / per) items (at least 1), slots only when it splits. Offsets are
/// validated; d is clamped anyway.
__device__ __forceinline__ uint64_t plan_count(const int32_t* offsets, int64_t r, int32_t per) {
  const int64_t d = offsets[r + 1] > offsets[r] ? offsets[r + 1] - offsets[r] : 0;
  const uint64_t items = d > per ? static_cast<uint64_t>((d + per - 1) / per) : 1;
  return items << 32 | (items > 1 ? items : 0);
}

/// Writes row r's items and slot owners from the inclusive sums of plan_count.
__device__ __forceinline__ void plan_fill(const int32_t* offsets, int64_t r, int32_t per, const uint64_t* totals,
                                          SplitItem* items, int32_t* slot_rows) {
  const uint64_t before = r > 0 ? totals[r - 1] : 0, mine = plan_count(offsets, r, per);
  const int32_t count = static_cast<int32_t>(mine >> 32), first = static_cast<int32_t>(before >> 32);
  const int32_t slot = count > 1 ? static_cast<int32_t>(before & 0xffffffffu) : -1;
  for (int32_t s = 0; s < count; ++s) {
    items[first + s] = SplitItem{static_cast<int32_t>(r), s, count, slot};
    if (slot >= 0) slot_rows[slot + s] = s == 0 ? static_cast<int32_t>(r) : -1;
  }
}

/// The entries one warp item covers: [begin, end) of `row`'s list; `slot` >= 0: write partials there.
struct ItemRange {
  int64_t row, begin, end;
  int32_t slot;
};

/// Item t of `plan` over the CSR `offsets` (t = the row itself without a plan). False past the plan's items.
__device__ __forceinline__ bool item_range(const SplitPlan& plan, const int32_t* offsets, int64_t t, ItemRange& r) {
  if (plan.items == nullptr) {
    r = {t, offsets[t], offsets[t + 1], -1};
    return true;
  }
  if (t >= static_cast<int64_t>(plan.totals[plan.rows - 1] >> 32)) return false;
  const SplitItem it = plan.items[t];
  const int64_t row_begin = offsets[it.row], row_end = offsets[it.row + 1];
  const int64_t begin = row_begin + static_cast<int64_t>(it.split) * plan.per_item;
  r = {it.row, begin, begin + plan.per_item < row_end ? begin + plan.per_item : row_end,
       it.slot >= 0 ? it.slot + it.split : -1};
  return true;
}

}  // namespace omniattn::detail::cuda::graph
