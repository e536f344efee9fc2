// The decode planner: every schedule covers every tile of every segment exactly once, writes a segment directly
// only when one item covers it whole, merges exactly the split segments, and stream-K balances ragged batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "decode/decode_plan.hpp"
#include "support/test_util.hpp"

namespace omniattn::testing {
namespace {

using detail::DecodePlan;
using detail::DecodeSegment;

std::vector<DecodeSegment> segments_of(const std::vector<int32_t>& tile_counts) {
  std::vector<DecodeSegment> segs;
  for (int32_t n : tile_counts) {
    DecodeSegment s;
    s.batch = static_cast<int32_t>(segs.size());
    s.tiles.window_end = n;
    segs.push_back(s);
  }
  return segs;
}

void expect_valid(const DecodePlan& plan) {
  std::vector<std::vector<int>> covered(plan.segments.size());
  for (size_t s = 0; s < plan.segments.size(); ++s) covered[s].assign(plan.segments[s].tiles.count(), 0);
  std::vector<int> direct(plan.segments.size(), 0), slot_used(plan.num_partials, 0);
  ASSERT_EQ(plan.cta_items.front(), 0);
  ASSERT_EQ(plan.cta_items.back(), static_cast<int32_t>(plan.items.size()));
  for (const auto& item : plan.items) {
    ASSERT_LE(0, item.tile_begin);
    ASSERT_LE(item.tile_begin, item.tile_end);
    ASSERT_LE(item.tile_end, plan.segments[item.segment].tiles.count());
    for (int32_t t = item.tile_begin; t < item.tile_end; ++t) ++covered[item.segment][t];
    if (item.partial < 0) {
      ++direct[item.segment];
      EXPECT_EQ(item.tile_begin, 0);
      EXPECT_EQ(item.tile_end, plan.segments[item.segment].tiles.count());
      EXPECT_EQ(item.merge, -1);
    } else {
      ASSERT_LT(item.partial, plan.num_partials);
      ++slot_used[item.partial];
      // The item's merge is its segment's, and holds its slot (the kernel's last writer merges through it).
      ASSERT_GE(item.merge, 0);
      ASSERT_LT(item.merge, static_cast<int32_t>(plan.merges.size()));
      const auto& m = plan.merges[item.merge];
      EXPECT_EQ(m.segment, item.segment);
      EXPECT_LE(m.first_partial, item.partial);
      EXPECT_LT(item.partial, m.first_partial + m.partials);
    }
  }
  for (size_t s = 0; s < covered.size(); ++s)
    for (int c : covered[s]) ASSERT_EQ(c, 1) << "segment " << s;
  for (int u : slot_used) EXPECT_EQ(u, 1);
  std::map<int32_t, int> merged;
  int32_t next_slot = 0;
  for (const auto& m : plan.merges) {
    EXPECT_EQ(m.first_partial, next_slot);
    EXPECT_GE(m.partials, 2);
    next_slot += m.partials;
    ++merged[m.segment];
  }
  EXPECT_EQ(next_slot, plan.num_partials);
  for (size_t s = 0; s < plan.segments.size(); ++s)
    EXPECT_EQ(direct[s] + merged[static_cast<int32_t>(s)], 1) << "segment " << s << " written once";
}

int64_t max_cta_tiles(const DecodePlan& plan) {
  int64_t worst = 0;
  for (int c = 0; c < plan.grid(); ++c) {
    int64_t tiles = 0;
    for (int32_t i = plan.cta_items[c]; i < plan.cta_items[c + 1]; ++i)
      tiles += plan.items[i].tile_end - plan.items[i].tile_begin;
    worst = std::max(worst, tiles);
  }
  return worst;
}

TEST(DecodePlan, EverySchedulePartitionsTheTiles) {
  std::uniform_int_distribution<int32_t> len(0, 300);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<int32_t> counts(1 + trial * 7);
    for (auto& c : counts) c = len(rng()) * (trial % 3 == 0 ? 1 : (len(rng()) % 4 == 0));  // some empty
    for (DecodeSchedule schedule : {DecodeSchedule::automatic, DecodeSchedule::no_split, DecodeSchedule::split_kv,
                                    DecodeSchedule::stream_k})
      for (int ctas : {1, 7, 132, 264}) {
        DecodeConfig config;
        config.schedule = schedule;
        detail::DecodePlanShape shape;
        shape.resident_ctas = ctas;
        const DecodePlan plan = detail::plan_decode(segments_of(counts), config, shape);
        SCOPED_TRACE(::testing::Message() << "trial " << trial << " schedule " << int(schedule) << " ctas " << ctas);
        expect_valid(plan);
        if (plan.schedule == DecodeSchedule::no_split)  // longest first, ties in segment order
          for (int c = 1; c < plan.grid(); ++c) {
            const auto& a = plan.items[plan.cta_items[c - 1]];
            const auto& b = plan.items[plan.cta_items[c]];
            const int32_t na = plan.segments[a.segment].tiles.count(), nb = plan.segments[b.segment].tiles.count();
            EXPECT_TRUE(na > nb || (na == nb && a.segment < b.segment)) << "CTA " << c;
          }
      }
  }
}

TEST(DecodePlan, StreamKBalancesARaggedBatch) {
  // One 128k sequence and 63 of 1k, 8 KV heads, 64-key tiles, 264 resident CTAs.
  std::vector<int32_t> counts;
  for (int b = 0; b < 64; ++b)
    for (int h = 0; h < 8; ++h) counts.push_back(b == 0 ? 2048 : 16);
  detail::DecodePlanShape shape;
  shape.resident_ctas = 264;
  const DecodePlan plan = detail::plan_decode(segments_of(counts), {}, shape);
  EXPECT_EQ(plan.schedule, DecodeSchedule::stream_k);
  expect_valid(plan);
  const int64_t fair = (plan.total_tiles + 263) / 264;
  EXPECT_LE(max_cta_tiles(plan), fair);
  EXPECT_LE(plan.grid(), 264);
  // A batch of equal segments that fills the GPU is not split.
  const DecodePlan full = detail::plan_decode(segments_of(std::vector<int32_t>(512, 64)), {}, shape);
  EXPECT_EQ(full.schedule, DecodeSchedule::no_split);
  EXPECT_EQ(full.num_partials, 0);
  expect_valid(full);
}

}  // namespace
}  // namespace omniattn::testing
