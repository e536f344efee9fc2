// The sm_90a forward's dynamic persistent schedule (Sm90TileScheduler::next) played on the host: many CTAs draw
// tickets in random interleavings, launch after launch on the same counters. Every tile must be run exactly once
// per launch, and the counters must be zero again after each launch (no launch pays a memset).
#define OMNIATTN_CUDA_EMULATION 1
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "cuda/flash/sm90_scheduler.cuh"

namespace omniattn::detail::cuda {
namespace {

// One launch of `ctas` CTAs over `tiles` tiles: each CTA runs tile b first, then what next() hands it; a random
// CTA moves at each step. Returns how often each tile ran.
std::vector<int> play_launch(Sm90TileCounters& counters, int tiles, int ctas, std::mt19937& rng) {
  std::vector<int> runs(tiles, 0), current(ctas);
  std::vector<int> live;
  for (int b = 0; b < ctas; ++b) {
    current[b] = b;
    live.push_back(b);
  }
  while (!live.empty()) {
    const size_t pick = std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng);
    const int b = live[pick];
    ++runs[current[b]];
    current[b] = Sm90TileScheduler::next(&counters, tiles, ctas);
    if (current[b] >= tiles) {
      live[pick] = live.back();
      live.pop_back();
    }
  }
  return runs;
}

TEST(Sm90TileScheduler, EveryTileOnceAndCountersResetEachLaunch) {
  std::mt19937 rng(1234);
  const int shapes[][2] = {{1, 1}, {5, 5}, {7, 3}, {300, 132}, {1000, 7}, {133, 132}};
  for (const auto& shape : shapes) {
    const int tiles = shape[0], ctas = shape[1];  // the launch's grid: min(tiles, SMs), so ctas <= tiles
    Sm90TileCounters counters{0, 0};
    for (int launch = 0; launch < 3; ++launch) {
      const std::vector<int> runs = play_launch(counters, tiles, ctas, rng);
      for (int t = 0; t < tiles; ++t)
        ASSERT_EQ(runs[t], 1) << "tile " << t << " of " << tiles << ", " << ctas << " CTAs, launch " << launch;
      EXPECT_EQ(counters.ticket, 0) << tiles << " tiles, " << ctas << " CTAs, launch " << launch;
      EXPECT_EQ(counters.exhausted, 0) << tiles << " tiles, " << ctas << " CTAs, launch " << launch;
    }
  }
}

TEST(Sm90TileScheduler, OneCtaPerTileDrawsNothing) {
  EXPECT_EQ(Sm90TileScheduler::next(nullptr, 17, 17), 17);
}

}  // namespace
}  // namespace omniattn::detail::cuda
