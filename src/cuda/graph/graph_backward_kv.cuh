#pragma once
// Backward pass 2 of graph attention (dK, dV), one warp per (key node j, KV head g), over the transposed graph: the
// query nodes i with an edge i -> j, ascending. The warp's lane groups take (edge, query head) pairs, head fastest,
// and recompute each pair's P and dS from q_i, dO_i and the (LSE, D) of pass 1: dV += P dO_i, dK += dS q_i, the
// query heads of g summed. The K/V rows of j stay in registers; nothing is stored per edge, nothing is atomic. A key
// node of many query nodes is split (graph_split.hpp): its items leave f32 parts in slots for graph_merge.cuh.
#include <cmath>

#include "cuda/graph/graph_logit.cuh"
#include "cuda/graph/graph_split.cuh"
#include "cuda/graph/graph_traits.cuh"
#include "cuda/graph/graph_warp.cuh"

namespace omniattn::detail::cuda::graph {

/// A group's (edge, head) pairs of one step: pair base + u * groups + group is (entry t, head h) of the key node's
/// list, advanced by a fixed stride per step without a division.
template <int kSteps>
struct PairCursor {
  int32_t entry[kSteps];  // < 2^31: a list is part of col_indices
  int head[kSteps];
  int32_t step_entries;  // pairs per step / group
  int step_heads;        // pairs per step % group

  __device__ __forceinline__ PairCursor(const LanePlace& at, int group) {
    const int per_step = at.groups * kSteps;
    step_entries = per_step / group;
    step_heads = per_step % group;
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      const int pair = u * at.groups + at.group;
      entry[u] = pair / group;
      head[u] = pair % group;
    }
  }
  __device__ __forceinline__ void advance(int group) {
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      entry[u] += step_entries;
      head[u] += step_heads;
      if (head[u] >= group) {
        head[u] -= group;
        ++entry[u];
      }
    }
  }
};

template <class Traits>
__device__ __forceinline__ void graph_backward_kv_warp(const GraphBwdParams& p, int64_t warp, int lane) {
  using Element = typename Traits::Element;
  constexpr int kVec = Traits::kVec, kElems = Traits::kElems, kRow = Traits::kRow, kSteps = Traits::kSteps;
  const WarpItem item = warp_item(warp, p.hkv, 1);
  ItemRange range;  // warp-uniform returns
  if (item.node >= p.kv_items || !item_range(p.kv_plan, p.t_offsets, item.node, range)) return;
  const int64_t node = range.row;
  const LanePlace at = lane_place(p.lanes, lane);

  float kf[kRow], vf[kRow];  // (kRow,) each: this lane's part of key node j's K and V rows
  load_row_floats<Element, kVec>(kf, row_at<Element>(p.k, node, item.kv_head), true, p.lanes.vec_k, at);
  load_row_floats<Element, kVec>(vf, row_at<Element>(p.v, node, item.kv_head), true, p.lanes.vec_v, at);
  float dk[kRow], dv[kRow];  // (kRow,) each
#pragma unroll
  for (int c = 0; c < kRow; ++c) dk[c] = dv[c] = 0.0f;

  const int64_t begin = range.begin, count = range.end - range.begin;
  const int head0 = item.kv_head * p.group;
  PairCursor<kSteps> cursor(at, p.group);
  int32_t source[kSteps];  // query node of each pair of the step (-1: past the list)
#pragma unroll
  for (int u = 0; u < kSteps; ++u) source[u] = cursor.entry[u] < count ? p.t_sources[begin + cursor.entry[u]] : -1;
  const int64_t pairs = count * p.group, per_step = static_cast<int64_t>(at.groups) * kSteps;
  for (int64_t base = 0; base < pairs; base += per_step) {
    uint4 q_vec[kSteps][kVec], do_vec[kSteps][kVec];  // (kSteps, kVec): all loads of the step issued up front
    RowStat stat[kSteps];
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      const bool live = source[u] >= 0;
      const int64_t i = live ? source[u] : 0;
      const int head = head0 + cursor.head[u];
      load_row<Element, kVec>(q_vec[u], row_at<Element>(p.q, i, head), live, p.lanes.vec_k, at);
      load_row<Element, kVec>(do_vec[u], row_at<Element>(p.dout, i, head), live, p.lanes.vec_v, at);
      stat[u] = live ? p.stats[i * p.hq + head] : RowStat{INFINITY, 0.0f};
    }
    cursor.advance(p.group);
    int32_t next[kSteps];
#pragma unroll
    for (int u = 0; u < kSteps; ++u) next[u] = cursor.entry[u] < count ? p.t_sources[begin + cursor.entry[u]] : -1;

    float dots[2 * kSteps];  // (2, kSteps): q.k, then dO.v
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float qf[kRow], df[kRow];
#pragma unroll
      for (int s = 0; s < kVec; ++s) {
        unpack<Element>(q_vec[u][s], qf + s * kElems);
        unpack<Element>(do_vec[u][s], df + s * kElems);
      }
      float qk = 0.0f, dov = 0.0f;
#pragma unroll
      for (int c = 0; c < kRow; ++c) {
        qk += qf[c] * kf[c];
        dov += df[c] * vf[c];
      }
      dots[u] = qk;
      dots[kSteps + u] = dov;
    }
    group_sum(dots, at.lanes);

#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float qf[kRow], df[kRow];
#pragma unroll
      for (int s = 0; s < kVec; ++s) {
        unpack<Element>(q_vec[u][s], qf + s * kElems);
        unpack<Element>(do_vec[u][s], df + s * kElems);
      }
      float slope;
      const float logit = logit_log2(p.logit, dots[u], slope);
      const float prob = source[u] >= 0 ? fast_exp2(logit - stat[u].lse_log2) : 0.0f;
      const float ds = prob * (dots[kSteps + u] - stat[u].delta) * slope;
#pragma unroll
      for (int c = 0; c < kRow; ++c) {
        dv[c] += prob * df[c];
        dk[c] += ds * qf[c];
      }
    }
#pragma unroll
    for (int u = 0; u < kSteps; ++u) source[u] = next[u];
  }

  sum_over_groups(dk, at.lanes);
  sum_over_groups(dv, at.lanes);
  // Group 0 writes dK, the last group dV (the same group when there is one); a split key node's items their slots.
  if (range.slot >= 0) {
    const int64_t at_slot = static_cast<int64_t>(range.slot) * p.hkv + item.kv_head;
    if (at.group == 0)
      store_floats<kVec, kElems>(p.part_dk + at_slot * (p.lanes.vec_k * kElems), dk, p.lanes.vec_k, at);
    if (at.group == at.groups - 1)
      store_floats<kVec, kElems>(p.part_dv + at_slot * (p.lanes.vec_v * kElems), dv, p.lanes.vec_v, at);
    return;
  }
  if (at.group == 0) store_row<Element, kVec>(row_at<Element>(p.dk, node, item.kv_head), dk, p.lanes.vec_k, at);
  if (at.group == at.groups - 1)
    store_row<Element, kVec>(row_at<Element>(p.dv, node, item.kv_head), dv, p.lanes.vec_v, at);
}

}  // namespace omniattn::detail::cuda::graph
