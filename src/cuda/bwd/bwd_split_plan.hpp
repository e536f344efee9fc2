#pragma once
// Block-sparse backward, not deterministic: which CTA walks what (BwdParams::units). One CTA walks a KV tile's
// listed query blocks; a mask that loads a few KV blocks far above the mean (sinks, prefix columns: listed by every
// query block) makes those walks the kernel's critical path (sinks + window at 16k: one 256-step walk of 2.5 ms
// against 18-step walks of ~0.1 ms, H200 session 11). Such a tile is cut into runs over disjoint ranges of mask query
// blocks, one CTA each; a run writes its dK / dV in f32 to its own workspace slot and the split-store kernel sums the
// tile's runs in run order (no atomics: the result does not depend on which run ends first).
//
// The plan reads only each KV block's largest list (kv_block_load): it balances work, and any plan is correct
// (the runs of a tile cover [0, q_blocks) exactly once).
#include <algorithm>
#include <cstdint>
#include <vector>

namespace omniattn::detail::cuda {

/// Unit t of the main kernel's grid.x: KV tile `tile` over the mask query blocks [qb_lo, qb_hi); slot >= 0: a run of
/// a split tile, its dK / dV to BwdParams::dkv_partial slot `slot`; -1: the whole tile, stored directly.
struct BwdKvUnit {
  int32_t tile = 0, qb_lo = 0, qb_hi = 0, slot = -1;
};

/// A split tile: its runs' slots [slot0, slot0 + runs), summed in that order by the split-store kernel.
struct BwdSplitTile {
  int32_t tile = 0, slot0 = 0, runs = 0, unused = 0;
};

struct BwdSplitPlan {
  std::vector<BwdKvUnit> units;         // empty: no tile is split (unit t = tile t over every query block)
  std::vector<BwdSplitTile> split_tiles;
  int32_t slots = 0;                    // sum of the split tiles' runs
};

/// A tile is split when its largest list exceeds kSplitFactor x the mean over tiles (and kMinRun blocks); its runs
/// then hold about that many blocks each, cut evenly in query-block space (the long lists of the generators' patterns,
/// sinks and prefix columns, are dense there). The runs go first in launch order (they are the longest units left),
/// then the other tiles in increasing order.
/// run_blocks > 0: runs of that many blocks instead (tests, experiments).
inline BwdSplitPlan plan_bwd_split(const std::vector<int32_t>& kv_block_load, int n_tiles, int k_tiles_per_block,
                                   int q_blocks, int run_blocks = 0) {
  constexpr double kSplitFactor = 2.0;
  constexpr int kMinRun = 8;
  BwdSplitPlan plan;
  if (n_tiles <= 0 || q_blocks <= 0 || k_tiles_per_block <= 0) return plan;
  auto load = [&](int tile) {
    const auto kb = static_cast<size_t>(tile / k_tiles_per_block);
    return kb < kv_block_load.size() ? kv_block_load[kb] : 0;
  };
  double total = 0;
  for (int n = 0; n < n_tiles; ++n) total += load(n);
  const int run =
      run_blocks > 0 ? run_blocks : std::max(kMinRun, static_cast<int>(kSplitFactor * total / n_tiles + 0.999));
  std::vector<BwdKvUnit> whole;
  for (int n = 0; n < n_tiles; ++n) {
    const int listed = load(n);
    if (listed <= run) {
      whole.push_back({n, 0, q_blocks, -1});
      continue;
    }
    const int runs = std::min(q_blocks, (listed + run - 1) / run);
    plan.split_tiles.push_back({n, plan.slots, runs, 0});
    for (int r = 0; r < runs; ++r) {
      const auto lo = static_cast<int32_t>(int64_t{q_blocks} * r / runs);
      const auto hi = static_cast<int32_t>(int64_t{q_blocks} * (r + 1) / runs);
      plan.units.push_back({n, lo, hi, plan.slots + r});
    }
    plan.slots += runs;
  }
  if (plan.split_tiles.empty()) return {};
  plan.units.insert(plan.units.end(), whole.begin(), whole.end());
  return plan;
}

}  // namespace omniattn::detail::cuda
