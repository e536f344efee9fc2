#pragma once
// The generators' common builder: given the exact keys each query sees (as disjoint intervals), classify
// every (query block, KV block) as skipped, full (all pairs visible) or partial, in O(visible intervals ×
// blocks they span) — never O(Sq × Sk).
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "omniattn/mask.hpp"

namespace omniattn::detail::sparse {

using Intervals = std::vector<std::pair<int64_t, int64_t>>;  // [begin, end) key ranges, disjoint
/// Appends the keys query i of mask head `head` sees to `out` (disjoint, any order).
using RowKeys = std::function<void(int64_t head, int64_t i, Intervals& out)>;

/// Lists for every (head, query block) of g (rows repeated over g.batch), then BlockMask::from_lists.
/// `row_keys` must describe exactly what `element` allows, so that partial blocks are exact.
BlockMask build_block_mask(const BlockMask::Geometry& g, const ElementMask& element, const RowKeys& row_keys);

/// The keys the 1-D rules of `e` (window or head window, sinks, prefix) allow query i, in a sequence of sq
/// queries and sk keys, intersected with [lo, hi): at most two intervals.
void window_keys(const ElementMask& e, int64_t head, int64_t i, int64_t sq, int64_t sk, int64_t lo, int64_t hi,
                 Intervals& out);

}  // namespace omniattn::detail::sparse
