#pragma once
// The decode work plan: which CTA computes which keys of which (sequence, KV head, query-row block), and which
// partial results are merged afterwards. Built on the host from the lengths (plain data, uploaded as is) so that
// the CUDA kernel only walks lists; host-only code, tested on the CPU.
//
// Units: a "segment" is one (sequence, KV head, block of packed query rows); its keys are cut into tiles of
// block_n keys, addressed by a virtual tile index over the segment's KeyRanges (sinks, then window).
//   no_split  one CTA per segment, whole key range, writes O/LSE directly;
//   split_kv  each segment cut into n equal tile ranges (FlashDecoding), partials merged;
//   stream_k  the concatenation of every segment's tiles cut into G equal runs, one per CTA (Lean Attention):
//             a run may end inside a segment and the next CTA continues it; a segment computed by one CTA alone
//             is written directly, the others go through partials and the merge.
#include <cstdint>
#include <vector>

#include "decode/key_ranges.hpp"
#include "omniattn/decode.hpp"

namespace omniattn::detail {

struct DecodeProblem;

struct DecodeSegment {
  int32_t batch = 0, kv_head = 0;
  int32_t row0 = 0, rows = 0;  // packed query rows [row0, row0 + rows); row r = token r / group, head r % group
  int32_t seq_len = 0;         // keys of the sequence
  KeyRanges tiles;             // tiles of block_n keys this segment reads
};

struct DecodeItem {
  int32_t segment = 0;
  int32_t tile_begin = 0, tile_end = 0;  // virtual tiles [begin, end) of the segment
  int32_t partial = -1;                  // -1: the whole segment, write O/LSE; else its partial slot
  int32_t merge = -1;                    // with a partial: the segment's DecodeMerge (its last writer merges)
};

struct DecodeMerge {
  int32_t segment = 0, first_partial = 0, partials = 0;  // slots [first, first + partials), in key order
};

struct DecodePlan {
  DecodeSchedule schedule = DecodeSchedule::no_split;
  std::vector<DecodeSegment> segments;
  std::vector<DecodeItem> items;    // grouped by CTA
  std::vector<int32_t> cta_items;   // CTA c runs items [cta_items[c], cta_items[c + 1])
  std::vector<DecodeMerge> merges;  // segments that were split
  int32_t num_partials = 0;
  int64_t total_tiles = 0;
  int grid() const { return static_cast<int>(cta_items.size()) - 1; }
};

/// Inputs of the planner besides the problem's lengths and mask.
struct DecodePlanShape {
  int block_n = 64;          // keys per tile
  int rows_per_cta = 16;     // packed query rows per CTA
  int resident_ctas = 1;     // CTAs the GPU runs at once (SMs x occupancy)
  int min_tiles_per_cta = 4; // stream-K: no run shorter than this (merging a tiny run costs more than it saves)
};

/// The segments of a problem (lengths and mask of `p`).
std::vector<DecodeSegment> decode_segments(const DecodeProblem& p, int block_n, int rows_per_cta);

/// The plan for `segments` under `config` (automatic: no split when the segments already balance over the
/// resident CTAs, else stream-K).
DecodePlan plan_decode(std::vector<DecodeSegment> segments, const DecodeConfig& config, const DecodePlanShape& shape);

}  // namespace omniattn::detail
