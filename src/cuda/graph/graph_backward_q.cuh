#pragma once
// Backward pass 1 of graph attention (dQ), one warp per (query node i, KV head g, chunk of g's query heads), walking
// CSR row i as the forward does: per edge and head P = exp(logit - LSE), dP = dO.v, dS = P (dP - D) dlogit/d(q.k),
// dQ += dS k. D = rowsum(dO o O) comes first, from the node's O and dO rows; the pass stores (LSE, D) per (node,
// head) for the dK/dV pass. No atomics: each dQ row is one warp's, summed over its groups by a fixed butterfly (a
// split row's items each leave an f32 part in a slot; graph_merge.cuh adds them in split order).
#include <cmath>

#include "cuda/graph/graph_logit.cuh"
#include "cuda/graph/graph_split.cuh"
#include "cuda/graph/graph_traits.cuh"
#include "cuda/graph/graph_warp.cuh"

namespace omniattn::detail::cuda::graph {

template <class Traits>
__device__ __forceinline__ void graph_backward_q_warp(const GraphBwdParams& p, int64_t warp, int lane) {
  using Element = typename Traits::Element;
  constexpr int kVec = Traits::kVec, kHeads = Traits::kHeads, kElems = Traits::kElems, kRow = Traits::kRow,
                kSteps = Traits::kSteps;
  const WarpItem item = warp_item(warp, p.hkv, p.chunks);
  ItemRange range;  // warp-uniform returns
  if (item.node >= p.q_items || !item_range(p.q_plan, p.row_offsets, item.node, range)) return;
  const int64_t node = range.row;
  const LanePlace at = lane_place(p.lanes, lane);
  const int head0 = item.kv_head * p.group + item.chunk * kHeads;
  const int heads = min(kHeads, p.group - item.chunk * kHeads);

  float q[kHeads][kRow], dout[kHeads][kRow];  // (kHeads, kRow) each: this lane's part of the node's rows
  float lse_log2[kHeads], delta[kHeads];      // per head, the same in every lane
#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    const bool live = h < heads;
    const int head = head0 + (live ? h : 0);
    float out[kRow];
    load_row_floats<Element, kVec>(q[h], row_at<Element>(p.q, node, head), live, p.lanes.vec_k, at);
    load_row_floats<Element, kVec>(dout[h], row_at<Element>(p.dout, node, head), live, p.lanes.vec_v, at);
    load_row_floats<Element, kVec>(out, row_at<Element>(p.out, node, head), live, p.lanes.vec_v, at);
    float d = 0.0f;
#pragma unroll
    for (int c = 0; c < kRow; ++c) d += dout[h][c] * out[c];
    delta[h] = d;
    const float lse = live ? p.lse[head * p.lse_head + node * p.lse_token] : INFINITY;
    lse_log2[h] = fabsf(lse) == INFINITY ? INFINITY : lse * kLog2e;  // infinite LSE: P = 0 (as the CPU path)
  }
  group_sum(delta, at.lanes);
#pragma unroll
  for (int h = 0; h < kHeads; ++h)
    if (h < heads && h % at.groups == at.group && at.sub == 0 && range.begin == p.row_offsets[node])
      p.stats[node * p.hq + head0 + h] = RowStat{lse_log2[h], delta[h]};  // the row's first item

  float dq[kHeads][kRow];  // (kHeads, kRow)
#pragma unroll
  for (int h = 0; h < kHeads; ++h)
#pragma unroll
    for (int c = 0; c < kRow; ++c) dq[h][c] = 0.0f;

  const int64_t begin = range.begin, end = range.end;
  const int64_t per_step = static_cast<int64_t>(at.groups) * kSteps;
  int32_t key[kSteps];
  fetch_entries(key, p.col_indices, begin, end, at);
  for (int64_t base = begin; base < end; base += per_step) {
    uint4 k_vec[kSteps][kVec], v_vec[kSteps][kVec];  // (kSteps, kVec)
    load_step_kv<Element, kVec, kSteps>(k_vec, v_vec, key, p.k, p.v, item.kv_head, p.lanes, at);
    int32_t next[kSteps];
    fetch_entries(next, p.col_indices, base + per_step, end, at);

    float dots[2 * kHeads * kSteps];  // (2, kHeads, kSteps): q.k, then dO.v
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float kf[kRow], vf[kRow];
#pragma unroll
      for (int s = 0; s < kVec; ++s) {
        unpack<Element>(k_vec[u][s], kf + s * kElems);
        unpack<Element>(v_vec[u][s], vf + s * kElems);
      }
#pragma unroll
      for (int h = 0; h < kHeads; ++h) {
        float qk = 0.0f, dv = 0.0f;
#pragma unroll
        for (int c = 0; c < kRow; ++c) {
          qk += q[h][c] * kf[c];
          dv += dout[h][c] * vf[c];
        }
        dots[h * kSteps + u] = qk;
        dots[(kHeads + h) * kSteps + u] = dv;
      }
    }
    group_sum(dots, at.lanes);

#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float kf[kRow];
#pragma unroll
      for (int s = 0; s < kVec; ++s) unpack<Element>(k_vec[u][s], kf + s * kElems);
#pragma unroll
      for (int h = 0; h < kHeads; ++h) {
        float slope;
        const float logit = logit_log2(p.logit, dots[h * kSteps + u], slope);
        const float prob = key[u] >= 0 ? fast_exp2(logit - lse_log2[h]) : 0.0f;
        const float ds = prob * (dots[(kHeads + h) * kSteps + u] - delta[h]) * slope;  // d loss / d (q.k)
#pragma unroll
        for (int c = 0; c < kRow; ++c) dq[h][c] += ds * kf[c];
      }
    }
#pragma unroll
    for (int u = 0; u < kSteps; ++u) key[u] = next[u];
  }

#pragma unroll
  for (int h = 0; h < kHeads; ++h) sum_over_groups(dq[h], at.lanes);
#pragma unroll
  for (int h = 0; h < kHeads; ++h)
    if (h < heads && h % at.groups == at.group) {
      if (range.slot >= 0)
        store_floats<kVec, kElems>(p.part_dq + (static_cast<int64_t>(range.slot) * p.hq + head0 + h) * (p.lanes.vec_k * kElems),
                                   dq[h], p.lanes.vec_k, at);
      else
        store_row<Element, kVec>(row_at<Element>(p.dq, node, head0 + h), dq[h], p.lanes.vec_k, at);
    }
}

}  // namespace omniattn::detail::cuda::graph
