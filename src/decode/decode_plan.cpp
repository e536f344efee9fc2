// The decode planner (decode_plan.hpp): segments from the lengths, then one of three schedules.
#include "decode/decode_plan.hpp"

#include <algorithm>
#include <numeric>

#include "decode/decode_problem.hpp"

namespace omniattn::detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Items are appended in CTA order; `end_cta()` closes the current CTA's list. No per-CTA vectors: planning runs
// on every decode call (a vector per CTA cost ~15 µs of host time at 264 CTAs).
struct PlanBuilder {
  DecodePlan& plan;
  explicit PlanBuilder(DecodePlan& p) : plan(p) { plan.cta_items.assign(1, 0); }
  void add(const DecodeItem& item) { plan.items.push_back(item); }
  void end_cta() { plan.cta_items.push_back(static_cast<int32_t>(plan.items.size())); }
};

// Adds the merges of pieces already numbered: slots of one segment are consecutive.
void collect_merges(DecodePlan& plan) {
  std::vector<DecodeMerge> by_slot(static_cast<size_t>(plan.num_partials));
  std::vector<DecodeMerge> merges;
  for (const DecodeItem& item : plan.items)
    if (item.partial >= 0) by_slot[item.partial] = {item.segment, item.partial, 1};
  for (int32_t slot = 0; slot < plan.num_partials; ++slot) {
    if (!merges.empty() && merges.back().segment == by_slot[slot].segment) ++merges.back().partials;
    else merges.push_back(by_slot[slot]);
  }
  std::vector<int32_t> merge_of_slot(static_cast<size_t>(plan.num_partials));
  for (int32_t m = 0; m < static_cast<int32_t>(merges.size()); ++m)
    for (int32_t i = 0; i < merges[m].partials; ++i) merge_of_slot[merges[m].first_partial + i] = m;
  for (DecodeItem& item : plan.items)
    if (item.partial >= 0) item.merge = merge_of_slot[item.partial];
  plan.merges = std::move(merges);
}

void plan_no_split(DecodePlan& plan) {
  // Longest first: CTAs are dispatched in index order, so long segments start in the first wave.
  std::vector<int32_t> order(plan.segments.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return plan.segments[a].tiles.count() > plan.segments[b].tiles.count();
  });
  PlanBuilder build(plan);
  plan.items.reserve(order.size());
  for (int32_t s : order) {
    build.add(DecodeItem{s, 0, plan.segments[s].tiles.count(), -1});
    build.end_cta();
  }
}

// CTAs are numbered split-major: CTAs (segment s, split i) for every s come before split i + 1. The KV heads of a
// sequence are consecutive segments, so CTAs running together read the same token range of every head: the
// heads' rows of a token are adjacent in memory ([.., token, head, D] caches), and DRAM pages are read whole.
// Partial slots stay consecutive per segment (the merge reads them in key order).
void plan_split_kv(DecodePlan& plan, int64_t splits) {
  const int32_t segments = static_cast<int32_t>(plan.segments.size());
  std::vector<int64_t> n(static_cast<size_t>(segments)), first_slot(static_cast<size_t>(segments), -1);
  int64_t most = 0;
  for (int32_t s = 0; s < segments; ++s) {
    n[s] = std::max<int64_t>(1, std::min<int64_t>(splits, plan.segments[s].tiles.count()));
    if (n[s] > 1) first_slot[s] = plan.num_partials, plan.num_partials += static_cast<int32_t>(n[s]);
    most = std::max(most, n[s]);
  }
  PlanBuilder build(plan);
  for (int64_t i = 0; i < most; ++i)
    for (int32_t s = 0; s < segments; ++s) {
      if (i >= n[s]) continue;
      const int64_t count = plan.segments[s].tiles.count();
      DecodeItem item{s, static_cast<int32_t>(count * i / n[s]), static_cast<int32_t>(count * (i + 1) / n[s]), -1};
      if (n[s] > 1) item.partial = static_cast<int32_t>(first_slot[s] + i);
      build.add(item);
      build.end_cta();
    }
  collect_merges(plan);
}

void plan_stream_k(DecodePlan& plan, int64_t ctas) {
  const int64_t unit = ceil_div(plan.total_tiles, ctas);  // tiles per CTA
  const int64_t grid = ceil_div(plan.total_tiles, unit);
  // Segments in order cut CTA runs in increasing CTA order, so items come out grouped by CTA.
  PlanBuilder build(plan);
  int64_t cta = 0;     // the CTA whose list is open
  int64_t offset = 0;  // first global tile of the segment
  auto advance_to = [&](int64_t c) {
    for (; cta < c; ++cta) build.end_cta();
  };
  for (int32_t s = 0; s < static_cast<int32_t>(plan.segments.size()); ++s) {
    const int64_t count = plan.segments[s].tiles.count();
    if (count == 0) {  // nothing to read: one direct item (writes the empty result) in the CTA at this offset
      advance_to(std::min(offset / unit, grid - 1));
      build.add({s, 0, 0, -1});
      continue;
    }
    const int64_t first_cta = offset / unit, last_cta = (offset + count - 1) / unit;
    for (int64_t c = first_cta; c <= last_cta; ++c) {
      advance_to(c);
      const int64_t begin = std::max(offset, c * unit) - offset;
      const int64_t end = std::min(offset + count, (c + 1) * unit) - offset;
      DecodeItem item{s, static_cast<int32_t>(begin), static_cast<int32_t>(end), -1};
      if (first_cta != last_cta) item.partial = plan.num_partials++;
      build.add(item);
    }
    offset += count;
  }
  advance_to(grid);
  collect_merges(plan);
}

}  // namespace

std::vector<DecodeSegment> decode_segments(const DecodeProblem& p, int block_n, int rows_per_cta) {
  const int64_t group = p.group(), rows = group * p.sq, blocks = ceil_div(rows, rows_per_cta);
  std::vector<DecodeSegment> segments;
  segments.reserve(static_cast<size_t>(p.batch * p.hkv * blocks));
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.hkv; ++h)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        DecodeSegment s;
        s.batch = static_cast<int32_t>(b);
        s.kv_head = static_cast<int32_t>(h);
        s.row0 = static_cast<int32_t>(blk * rows_per_cta);
        s.rows = static_cast<int32_t>(std::min<int64_t>(rows_per_cta, rows - s.row0));
        s.seq_len = static_cast<int32_t>(p.cache.lens[b]);
        // Query tokens of these rows: [row0 / group, (row0 + rows - 1) / group].
        s.tiles = KeyRanges::of(p.mask(b), block_n, s.row0 / group, (s.row0 + s.rows - 1) / group + 1);
        segments.push_back(s);
      }
  return segments;
}

DecodePlan plan_decode(std::vector<DecodeSegment> segments, const DecodeConfig& config, const DecodePlanShape& shape) {
  DecodePlan plan;
  plan.segments = std::move(segments);
  int64_t longest = 0;
  for (const DecodeSegment& s : plan.segments) {
    plan.total_tiles += s.tiles.count();
    longest = std::max<int64_t>(longest, s.tiles.count());
  }
  const int64_t resident = std::max(1, config.num_ctas > 0 ? config.num_ctas : shape.resident_ctas);
  const int64_t fair = std::max<int64_t>(ceil_div(plan.total_tiles, resident), shape.min_tiles_per_cta);
  bool uniform = true;  // every segment reads the same number of tiles
  for (const DecodeSegment& s : plan.segments) uniform = uniform && s.tiles.count() == longest;
  const int64_t segment_count = static_cast<int64_t>(plan.segments.size());
  DecodeSchedule schedule = config.schedule;
  int64_t auto_splits = 0;
  if (schedule == DecodeSchedule::automatic) {
    if (longest * 4 <= fair * 5) {  // no segment much longer than a fair share: the batch fills the GPU as is
      schedule = DecodeSchedule::no_split;
    } else if (uniform) {  // equal segments: aligned splits, one wave (split_kv's order keeps DRAM pages whole)
      schedule = DecodeSchedule::split_kv;
      auto_splits = std::max<int64_t>(1, std::min(resident / std::max<int64_t>(1, segment_count),
                                                   longest / std::max(1, shape.min_tiles_per_cta)));
    } else {  // ragged: stream-K balances the work exactly
      schedule = DecodeSchedule::stream_k;
    }
  }
  if (plan.total_tiles == 0 || plan.segments.empty()) schedule = DecodeSchedule::no_split;
  plan.schedule = schedule;
  switch (schedule) {
    case DecodeSchedule::split_kv: {
      const int64_t splits = config.num_splits > 0 ? config.num_splits
                             : auto_splits > 0     ? auto_splits
                                                   : ceil_div(resident, std::max<int64_t>(1, segment_count));
      plan_split_kv(plan, splits);
      break;
    }
    case DecodeSchedule::stream_k: {
      const int64_t ctas = config.num_ctas > 0
                               ? config.num_ctas
                               : std::min(resident, ceil_div(plan.total_tiles, shape.min_tiles_per_cta));
      plan_stream_k(plan, std::max<int64_t>(1, ctas));
      break;
    }
    default: plan_no_split(plan); break;
  }
  return plan;
}

}  // namespace omniattn::detail
