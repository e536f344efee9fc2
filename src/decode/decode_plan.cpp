// The decode planner (decode_plan.hpp): segments from the lengths, then one of three schedules.
#include "decode/decode_plan.hpp"

#include <algorithm>
#include <numeric>

#include "decode/decode_problem.hpp"

namespace omniattn::detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Items are appended in CTA order; `end_cta()` closes the current CTA's list. No per-CTA vectors and no vector
// that a count known up front could not reserve: planning runs on every decode call (a vector per CTA cost ~15 µs
// of host time at 264 CTAs; the plan of 512 segments took 11.6 µs before the reservations, the skipped sort of
// equal segments and the merges built in place).
struct PlanBuilder {
  DecodePlan& plan;
  PlanBuilder(DecodePlan& p, size_t items, size_t ctas) : plan(p) {
    plan.items.reserve(items);
    plan.cta_items.reserve(ctas + 1);
    plan.cta_items.assign(1, 0);
  }
  void add(const DecodeItem& item) { plan.items.push_back(item); }
  void end_cta() { plan.cta_items.push_back(static_cast<int32_t>(plan.items.size())); }
  /// The merge of `pieces` partials of segment s, in the slots that follow: its index.
  int32_t merge(int32_t s, int64_t pieces) {
    plan.merges.push_back({s, plan.num_partials, static_cast<int32_t>(pieces)});
    plan.num_partials += static_cast<int32_t>(pieces);
    return static_cast<int32_t>(plan.merges.size()) - 1;
  }
};

void plan_no_split(DecodePlan& plan) {
  // Longest first: CTAs are dispatched in index order, so long segments start in the first wave. (Segments already
  // in that order, e.g. all equal, are not sorted: no allocation.)
  const auto& segs = plan.segments;
  std::vector<int32_t> order(segs.size());
  std::iota(order.begin(), order.end(), 0);
  const bool longest_first = std::is_sorted(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return segs[a].tiles.count() > segs[b].tiles.count();
  });
  if (!longest_first)
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return segs[a].tiles.count() > segs[b].tiles.count(); });
  PlanBuilder build(plan, order.size(), order.size());
  for (int32_t s : order) {
    build.add(DecodeItem{s, 0, segs[s].tiles.count(), -1});
    build.end_cta();
  }
}

// CTAs are numbered split-major: CTAs (segment s, split i) for every s come before split i + 1. The KV heads of a
// sequence are consecutive segments, so CTAs running together read the same token range of every head: the
// heads' rows of a token are adjacent in memory ([.., token, head, D] caches), and DRAM pages are read whole.
// Partial slots stay consecutive per segment (the merge reads them in key order).
void plan_split_kv(DecodePlan& plan, int64_t splits) {
  struct Split {
    int32_t n = 1, merge = -1;
  };
  const int32_t segments = static_cast<int32_t>(plan.segments.size());
  std::vector<Split> split(static_cast<size_t>(segments));
  int64_t most = 0, items = 0;
  for (int32_t s = 0; s < segments; ++s) {
    split[s].n = static_cast<int32_t>(std::max<int64_t>(1, std::min<int64_t>(splits, plan.segments[s].tiles.count())));
    most = std::max<int64_t>(most, split[s].n);
    items += split[s].n;
  }
  PlanBuilder build(plan, static_cast<size_t>(items), static_cast<size_t>(items));  // one item per CTA
  for (int32_t s = 0; s < segments; ++s)
    if (split[s].n > 1) split[s].merge = build.merge(s, split[s].n);
  for (int64_t i = 0; i < most; ++i)
    for (int32_t s = 0; s < segments; ++s) {
      const Split& sp = split[s];
      if (i >= sp.n) continue;
      const int64_t count = plan.segments[s].tiles.count();
      DecodeItem item{s, static_cast<int32_t>(count * i / sp.n), static_cast<int32_t>(count * (i + 1) / sp.n), -1};
      if (sp.n > 1) {
        item.partial = plan.merges[sp.merge].first_partial + static_cast<int32_t>(i);
        item.merge = sp.merge;
      }
      build.add(item);
      build.end_cta();
    }
}

void plan_stream_k(DecodePlan& plan, int64_t ctas) {
  const int64_t unit = ceil_div(plan.total_tiles, ctas);  // tiles per CTA
  const int64_t grid = ceil_div(plan.total_tiles, unit);
  // Segments in order cut CTA runs in increasing CTA order, so items come out grouped by CTA; a segment's pieces
  // take consecutive partial slots.
  PlanBuilder build(plan, static_cast<size_t>(grid + static_cast<int64_t>(plan.segments.size())),
                    static_cast<size_t>(grid));
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
    const int32_t merge = first_cta != last_cta ? build.merge(s, last_cta - first_cta + 1) : -1;
    for (int64_t c = first_cta; c <= last_cta; ++c) {
      advance_to(c);
      const int64_t begin = std::max(offset, c * unit) - offset;
      const int64_t end = std::min(offset + count, (c + 1) * unit) - offset;
      DecodeItem item{s, static_cast<int32_t>(begin), static_cast<int32_t>(end), -1};
      if (merge >= 0) {
        item.partial = plan.merges[merge].first_partial + static_cast<int32_t>(c - first_cta);
        item.merge = merge;
      }
      build.add(item);
    }
    offset += count;
  }
  advance_to(grid);
}

}  // namespace

std::vector<DecodeSegment> decode_segments(const DecodeProblem& p, int block_n, int rows_per_cta) {
  const int64_t group = p.group(), rows = group * p.sq, blocks = ceil_div(rows, rows_per_cta);
  std::vector<DecodeSegment> segments;
  segments.reserve(static_cast<size_t>(p.batch * p.hkv * blocks));
  for (int64_t b = 0; b < p.batch; ++b) {
    const size_t first = segments.size();  // the KV heads of sequence b share its row blocks' key ranges
    for (int64_t h = 0; h < p.hkv; ++h)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        DecodeSegment s;
        s.batch = static_cast<int32_t>(b);
        s.kv_head = static_cast<int32_t>(h);
        s.row0 = static_cast<int32_t>(blk * rows_per_cta);
        s.rows = static_cast<int32_t>(std::min<int64_t>(rows_per_cta, rows - s.row0));
        s.seq_len = static_cast<int32_t>(p.cache.lens[b]);
        // Query tokens of these rows: [row0 / group, (row0 + rows - 1) / group].
        s.tiles = h == 0 ? KeyRanges::of(p.mask(b), block_n, s.row0 / group, (s.row0 + s.rows - 1) / group + 1)
                         : segments[first + blk].tiles;
        segments.push_back(s);
      }
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
