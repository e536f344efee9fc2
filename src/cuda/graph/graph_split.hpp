#pragma once
// Splitting long CSR rows (hub nodes) into items of at most `per_item` entries, so that no warp walks a row of
// 10^5 edges alone while the rest of the GPU idles. A split row's items write f32 partials into slots; a merge
// kernel combines them in split order (deterministic) into the row's outputs. Rows of one item write directly.
#include <cstdint>

namespace omniattn::detail::cuda::graph {

/// Item t of a plan: entries [split * per_item, ...) of `row`; `slot` = the row's first partial slot (splits > 1),
/// else -1. Item slots of a row are slot + split.
struct SplitItem {
  int32_t row, split, splits, slot;
};

/// The plan of one pass; items == nullptr: one item per row, rows whole (no partials, no merge).
struct SplitPlan {
  const SplitItem* items = nullptr;  // [max items]
  const uint64_t* totals = nullptr;  // [rows] inclusive sums of (items << 32 | slots) per row
  const int32_t* slot_rows = nullptr;  // [max slots]: the row at a row's first slot, -1 at its other slots
  int64_t rows = 0;
  int32_t per_item = 0;  // entries per item
};

/// Items and partial slots of a plan for `entries` list entries over `rows` rows, bounded from above: a row of d > per
/// entries takes ceil(d / per) < 2 d / per items, all of them slots.
constexpr int64_t max_items(int64_t rows, int64_t entries, int64_t per) { return rows + entries / per; }
constexpr int64_t max_slots(int64_t entries, int64_t per) { return 2 * entries / per + 1; }

}  // namespace omniattn::detail::cuda::graph
