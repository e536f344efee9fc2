#pragma once
// Kernel parameters of the CUDA decode (plain data, filled on the host by decode_launch.cu, passed by value).
#include <cstdint>

#include "decode/decode_plan.hpp"

namespace omniattn::detail::cuda {

struct DecodeParams {
  // q, out [B, Sq, H, D]: element (b, t, h, c) at base + b*batch + t*token + h*head + c.
  const void* q = nullptr;
  void* out = nullptr;
  int64_t q_batch = 0, q_token = 0, q_head = 0;
  int64_t o_batch = 0, o_token = 0, o_head = 0;
  float* lse = nullptr;  // optional [B, Hq, Sq]
  int64_t lse_batch = 0, lse_head = 0, lse_token = 0;

  // Page pools: K row (page, slot, h) at k + page*k_page + slot*k_token + h*k_head (V alike).
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t k_page = 0, k_token = 0, k_head = 0;
  int64_t v_page = 0, v_token = 0, v_head = 0;
  // Block table (null: contiguous cache, page b for sequence b): entry (b, i) at table[b*table_batch + i].
  const int32_t* table = nullptr;
  int64_t table_batch = 0;
  int32_t num_pages = 0;   // page ids outside [0, num_pages) are never read; their rows come out NaN
  int32_t page_size = 1;
  int32_t page_shift = -1;  // log2(page_size) when a power of two, else -1

  int32_t sq = 1, group = 1;  // query tokens per sequence; query heads per KV head

  // Semantics (SequenceMask + ScoreMod of core/mask_policy.hpp).
  int64_t window_left = -1, window_right = -1, sinks = 0;
  float scale = 1.f, softcap = 0.f;
  bool general_logits = false;  // softcap, ALiBi or a negative scale: logits through ScoreMod per score
  float mult_log2 = 0.f;        // score units -> base-2 logits
  const float* alibi = nullptr;  // [B or 1, Hq]
  int64_t alibi_batch_stride = 0;
  const float* sink_logits = nullptr;  // [Hq]

  // Plan (device copies of DecodePlan's arrays).
  const DecodeSegment* segments = nullptr;
  const DecodeItem* items = nullptr;
  const int32_t* cta_items = nullptr;
  const DecodeMerge* merges = nullptr;
  // Partials: slot s holds rows_per_cta rows of O (f32, Dv each, normalized by its own sum) and their LSE.
  float* partial_o = nullptr;    // [slots, rows_per_cta, Dv]
  float* partial_lse = nullptr;  // [slots, rows_per_cta]
  // Per DecodeMerge: partials written so far. Zero before the kernel; the CTA that writes a segment's last
  // partial merges the segment and sets its counter back to zero (so the buffer is ready for the next call).
  int32_t* merge_counters = nullptr;
  int32_t rows_per_cta = 16;
  int32_t dv = 0;
  // 1: a CTA copies an item's first tiles while the previous item computes (decode_cta.cuh); 0: only once the item
  // computes (each item fills the pipeline anew; the A/B switch).
  int32_t item_lookahead = 1;
  // 1 (sm_90 only): K/V rows as bulk copies completing on per-stage mbarriers instead of 16-byte cp.async chunks.
  int32_t bulk_kv = 0;
};

}  // namespace omniattn::detail::cuda
