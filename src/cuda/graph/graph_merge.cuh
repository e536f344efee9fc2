#pragma once
// Merges of split rows (graph_split.hpp): one warp per (first slot of a split row, head); lane l owns the row's
// 16-byte vectors l, l + 32, ..., and adds the row's slots in split order, so a row's result is the same every run.
#include <cmath>

#include "cuda/graph/graph_logit.cuh"
#include "cuda/graph/graph_params.hpp"
#include "cuda/graph/graph_split.cuh"
#include "cuda/graph/graph_vector.cuh"

namespace omniattn::detail::cuda::graph {

/// True when `slot` is the first slot of a split row: its row and item count.
__device__ __forceinline__ bool first_slot(const SplitPlan& plan, int64_t slot, int32_t& row, int32_t& splits) {
  if (plan.items == nullptr || slot >= static_cast<int64_t>(plan.totals[plan.rows - 1] & 0xffffffffu)) return false;
  row = plan.slot_rows[slot];
  if (row < 0) return false;
  splits = plan.items[row > 0 ? plan.totals[row - 1] >> 32 : 0].splits;
  return true;
}

/// kElemsPerVector<Element> floats of a slot row at vector `index`.
template <class Element>
__device__ __forceinline__ void load_floats(float* f, const float* row, int index) {
  constexpr int kElems = kElemsPerVector<Element>;
#pragma unroll
  for (int w = 0; w < kElems; w += 4) {
    const uint4 v = load16(row + index * kElems + w);
    f[w] = word_to_float(v.x), f[w + 1] = word_to_float(v.y), f[w + 2] = word_to_float(v.z), f[w + 3] = word_to_float(v.w);
  }
}

/// Forward: a split row's (max, sum, O accumulator) per slot -> O and LSE of (row, query head h).
template <class Element>
__device__ __forceinline__ void graph_forward_merge_warp(const GraphFwdParams& p, int64_t warp, int lane) {
  constexpr int kElems = kElemsPerVector<Element>;
  const int64_t slot = warp / p.hq;
  const int h = static_cast<int>(warp % p.hq);
  int32_t row, splits;
  if (!first_slot(p.plan, slot, row, splits)) return;
  const int dv = p.lanes.vec_v * kElems;
  for (int index = lane; index < p.lanes.vec_v; index += 32) {
    float acc[kElems], part[kElems];  // (kElems,) each
    float row_max = -INFINITY, row_sum = 0.0f;
#pragma unroll
    for (int c = 0; c < kElems; ++c) acc[c] = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const int64_t at = (slot + s) * p.hq + h;
      const PartialMax m = p.part_max[at];
      load_floats<Element>(part, p.part_acc + at * dv, index);
      const float new_max = fmaxf(row_max, m.max_log2);
      const float ref = new_max == -INFINITY ? 0.0f : new_max;
      const float mine = fast_exp2(row_max - ref), theirs = fast_exp2(m.max_log2 - ref);
      row_sum = row_sum * mine + m.sum * theirs;
#pragma unroll
      for (int c = 0; c < kElems; ++c) acc[c] = acc[c] * mine + part[c] * theirs;
      row_max = new_max;
    }
    const float inv = row_sum > 0.0f ? 1.0f / row_sum : 0.0f;
#pragma unroll
    for (int c = 0; c < kElems; ++c) acc[c] *= inv;
    store16(static_cast<Element*>(p.out.data) + row * p.out.token + h * p.out.head + index * kElems, pack<Element>(acc));
    if (index == 0 && p.lse != nullptr)
      p.lse[h * p.lse_head + row * p.lse_token] = row_sum > 0.0f ? (row_max + log2f(row_sum)) * kLn2 : -INFINITY;
  }
}

/// Sum over a split row's slots of `vectors`-vector f32 rows at parts + ((slot + s) * heads + head) * row length.
template <class Element>
__device__ __forceinline__ void sum_slots(float* sum, const float* parts, int64_t slot, int splits, int64_t heads,
                                          int64_t head, int vectors, int index) {
  constexpr int kElems = kElemsPerVector<Element>;
  float part[kElems];
#pragma unroll
  for (int c = 0; c < kElems; ++c) sum[c] = 0.0f;
  for (int s = 0; s < splits; ++s) {
    load_floats<Element>(part, parts + ((slot + s) * heads + head) * (vectors * kElems), index);
#pragma unroll
    for (int c = 0; c < kElems; ++c) sum[c] += part[c];
  }
}

/// dQ of a split query row (row, query head).
template <class Element>
__device__ __forceinline__ void graph_dq_merge_warp(const GraphBwdParams& p, int64_t warp, int lane) {
  constexpr int kElems = kElemsPerVector<Element>;
  const int64_t slot = warp / p.hq;
  const int h = static_cast<int>(warp % p.hq);
  int32_t row, splits;
  if (!first_slot(p.q_plan, slot, row, splits)) return;
  for (int index = lane; index < p.lanes.vec_k; index += 32) {
    float sum[kElems];
    sum_slots<Element>(sum, p.part_dq, slot, splits, p.hq, h, p.lanes.vec_k, index);
    store16(static_cast<Element*>(p.dq.data) + row * p.dq.token + h * p.dq.head + index * kElems, pack<Element>(sum));
  }
}

/// dK and dV of a split key row (row, KV head).
template <class Element>
__device__ __forceinline__ void graph_dkv_merge_warp(const GraphBwdParams& p, int64_t warp, int lane) {
  constexpr int kElems = kElemsPerVector<Element>;
  const int64_t slot = warp / p.hkv;
  const int g = static_cast<int>(warp % p.hkv);
  int32_t row, splits;
  if (!first_slot(p.kv_plan, slot, row, splits)) return;
  float sum[kElems];
  for (int index = lane; index < p.lanes.vec_k; index += 32) {
    sum_slots<Element>(sum, p.part_dk, slot, splits, p.hkv, g, p.lanes.vec_k, index);
    store16(static_cast<Element*>(p.dk.data) + row * p.dk.token + g * p.dk.head + index * kElems, pack<Element>(sum));
  }
  for (int index = lane; index < p.lanes.vec_v; index += 32) {
    sum_slots<Element>(sum, p.part_dv, slot, splits, p.hkv, g, p.lanes.vec_v, index);
    store16(static_cast<Element*>(p.dv.data) + row * p.dv.token + g * p.dv.head + index * kElems, pack<Element>(sum));
  }
}

}  // namespace omniattn::detail::cuda::graph
