#pragma once
// Forward of graph attention for one warp: query node i, KV head g, and a chunk of g's query heads. The warp's lane
// groups walk CSR row i together, group r taking edges base + u * groups + r (u < kSteps) of each step; every K and
// V row loaded serves all the warp's heads. Each group keeps its own online softmax (max, sum, O accumulator per
// head); the groups merge at the end through shuffles. f32 throughout, O rounded once. The items of a split row
// (graph_split.hpp) each walk a part of it and leave their state in f32 slots for graph_merge.cuh.
#include <cmath>

#include "cuda/graph/graph_logit.cuh"
#include "cuda/graph/graph_split.cuh"
#include "cuda/graph/graph_traits.cuh"
#include "cuda/graph/graph_warp.cuh"

namespace omniattn::detail::cuda::graph {

template <class Traits>
__device__ __forceinline__ void graph_forward_warp(const GraphFwdParams& p, int64_t warp, int lane) {
  using Element = typename Traits::Element;
  constexpr int kVec = Traits::kVec, kHeads = Traits::kHeads, kElems = Traits::kElems, kRow = Traits::kRow,
                kSteps = Traits::kSteps;
  const WarpItem item = warp_item(warp, p.hkv, p.chunks);
  ItemRange range;  // warp-uniform returns
  if (item.node >= p.items || !item_range(p.plan, p.row_offsets, item.node, range)) return;
  const int64_t node = range.row;
  const LanePlace at = lane_place(p.lanes, lane);
  const int head0 = item.kv_head * p.group + item.chunk * kHeads;
  const int heads = min(kHeads, p.group - item.chunk * kHeads);  // heads past it stay zero and are not written

  float q[kHeads][kRow];  // (kHeads, kRow): this lane's part of each head's query row
#pragma unroll
  for (int h = 0; h < kHeads; ++h)
    load_row_floats<Element, kVec>(q[h], row_at<Element>(p.q, node, head0 + (h < heads ? h : 0)), h < heads,
                                   p.lanes.vec_k, at);
  float acc[kHeads][kRow];  // (kHeads, kRow): unnormalized O
  float row_max[kHeads], row_sum[kHeads];  // log2 domain; the same in every lane of a group
#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    row_max[h] = -INFINITY;
    row_sum[h] = 0.0f;
#pragma unroll
    for (int c = 0; c < kRow; ++c) acc[h][c] = 0.0f;
  }

  const int64_t begin = range.begin, end = range.end;
  const int64_t per_step = static_cast<int64_t>(at.groups) * kSteps;
  int32_t key[kSteps];  // key nodes of this group's edges in the step (-1: past the row)
  fetch_entries(key, p.col_indices, begin, end, at);
  for (int64_t base = begin; base < end; base += per_step) {
    uint4 k_vec[kSteps][kVec], v_vec[kSteps][kVec];  // (kSteps, kVec): every load of the step issued up front
    load_step_kv<Element, kVec, kSteps>(k_vec, v_vec, key, p.k, p.v, item.kv_head, p.lanes, at);
    int32_t next[kSteps];  // the next step's keys, in flight during this step's math
    fetch_entries(next, p.col_indices, base + per_step, end, at);

    float score[kHeads * kSteps];  // (kHeads, kSteps): partial dots, then the group's sums
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float kf[kRow];
#pragma unroll
      for (int s = 0; s < kVec; ++s) unpack<Element>(k_vec[u][s], kf + s * kElems);
#pragma unroll
      for (int h = 0; h < kHeads; ++h) {
        float dot = 0.0f;
#pragma unroll
        for (int c = 0; c < kRow; ++c) dot += q[h][c] * kf[c];
        score[h * kSteps + u] = dot;
      }
    }
    group_sum(score, at.lanes);

    // Online softmax: one rescale per head per step.
#pragma unroll
    for (int h = 0; h < kHeads; ++h) {
      float new_max = row_max[h];
#pragma unroll
      for (int u = 0; u < kSteps; ++u) {
        const float s = key[u] >= 0 ? logit_log2(p.logit, score[h * kSteps + u]) : -INFINITY;
        score[h * kSteps + u] = s;
        new_max = fmaxf(new_max, s);
      }
      const float ref = new_max == -INFINITY ? 0.0f : new_max;  // no -inf - -inf
      const float alpha = fast_exp2(row_max[h] - ref);
      row_sum[h] *= alpha;
#pragma unroll
      for (int c = 0; c < kRow; ++c) acc[h][c] *= alpha;
#pragma unroll
      for (int u = 0; u < kSteps; ++u) {
        score[h * kSteps + u] = fast_exp2(score[h * kSteps + u] - ref);
        row_sum[h] += score[h * kSteps + u];
      }
      row_max[h] = new_max;
    }
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float vf[kRow];
#pragma unroll
      for (int s = 0; s < kVec; ++s) unpack<Element>(v_vec[u][s], vf + s * kElems);
#pragma unroll
      for (int h = 0; h < kHeads; ++h)
#pragma unroll
        for (int c = 0; c < kRow; ++c) acc[h][c] += score[h * kSteps + u] * vf[c];
    }
#pragma unroll
    for (int u = 0; u < kSteps; ++u) key[u] = next[u];
  }

  // Merge the groups' softmax states (butterfly: every group ends with the row's state).
  for (int offset = at.lanes; offset < 32; offset <<= 1) {
#pragma unroll
    for (int h = 0; h < kHeads; ++h) {
      const float other_max = __shfl_xor_sync(kFullWarp, row_max[h], offset);
      const float other_sum = __shfl_xor_sync(kFullWarp, row_sum[h], offset);
      const float new_max = fmaxf(row_max[h], other_max);
      const float ref = new_max == -INFINITY ? 0.0f : new_max;
      const float mine = fast_exp2(row_max[h] - ref), theirs = fast_exp2(other_max - ref);
      row_sum[h] = row_sum[h] * mine + other_sum * theirs;
#pragma unroll
      for (int c = 0; c < kRow; ++c) acc[h][c] = acc[h][c] * mine + __shfl_xor_sync(kFullWarp, acc[h][c], offset) * theirs;
      row_max[h] = new_max;
    }
  }

  // Group h % groups writes head h: a split row's state to its slot, else O and LSE (no edges: O = 0, LSE = -inf).
#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    if (h >= heads || h % at.groups != at.group) continue;
    if (range.slot >= 0) {
      const int64_t at_slot = static_cast<int64_t>(range.slot) * p.hq + head0 + h;
      store_floats<kVec, kElems>(p.part_acc + at_slot * (p.lanes.vec_v * kElems), acc[h], p.lanes.vec_v, at);
      if (at.sub == 0) p.part_max[at_slot] = PartialMax{row_max[h], row_sum[h]};
      continue;
    }
    const float inv = row_sum[h] > 0.0f ? 1.0f / row_sum[h] : 0.0f;
#pragma unroll
    for (int c = 0; c < kRow; ++c) acc[h][c] *= inv;
    store_row<Element, kVec>(row_at<Element>(p.out, node, head0 + h), acc[h], p.lanes.vec_v, at);
    if (p.lse != nullptr && at.sub == 0)
      p.lse[(head0 + h) * p.lse_head + node * p.lse_token] =
          row_sum[h] > 0.0f ? (row_max[h] + log2f(row_sum[h])) * kLn2 : -INFINITY;
  }
}

}  // namespace omniattn::detail::cuda::graph
