#pragma once
// What every graph kernel's warp does first: find its item (node, KV head, head chunk), its lane's place in the
// lane groups, and move its lane's vectors of a row.
#include <cstdint>

#include "cuda/graph/graph_params.hpp"
#include "cuda/graph/graph_vector.cuh"

namespace omniattn::detail::cuda::graph {

/// Warp `warp`'s item. Chunk fastest, then KV head: the warps reading one node's rows are neighbours (one CTA),
/// so the chunks of a KV head meet in L1 and a node's KV heads (adjacent in [N, H, D]) in the same DRAM pages.
struct WarpItem {
  int64_t node;
  int kv_head, chunk;
};
__device__ __forceinline__ WarpItem warp_item(int64_t warp, int hkv, int chunks) {
  const int chunk = static_cast<int>(warp % chunks);
  const int64_t rest = warp / chunks;
  return {rest / hkv, static_cast<int>(rest % hkv), chunk};
}

/// A lane's place: lane `sub` of group `group`; `groups` groups of `lanes` lanes per warp.
struct LanePlace {
  int lanes, sub, group, groups;
};
__device__ __forceinline__ LanePlace lane_place(const LaneGeometry& g, int lane) {
  const int lanes = 1 << g.lane_shift;
  return {lanes, lane & (lanes - 1), lane >> g.lane_shift, 32 >> g.lane_shift};
}

/// This lane's vectors of a row of `vectors` 16-byte vectors: v[s] = vector s * lanes + sub, zero past the row's end
/// or when `valid` is false (nothing is read then).
template <class Element, int kVec>
__device__ __forceinline__ void load_row(uint4 (&v)[kVec], const Element* row, bool valid, int vectors,
                                         const LanePlace& at) {
#pragma unroll
  for (int s = 0; s < kVec; ++s) {
    const int index = s * at.lanes + at.sub;
    v[s] = valid && index < vectors ? load16(row + index * kElemsPerVector<Element>) : uint4{0, 0, 0, 0};
  }
}

/// The same row as floats: (kVec * elements per vector,) per lane.
template <class Element, int kVec>
__device__ __forceinline__ void load_row_floats(float* f, const Element* row, bool valid, int vectors,
                                                const LanePlace& at) {
  uint4 v[kVec];
  load_row<Element, kVec>(v, row, valid, vectors, at);
#pragma unroll
  for (int s = 0; s < kVec; ++s) unpack<Element>(v[s], f + s * kElemsPerVector<Element>);
}

/// Stores this lane's vectors of a row from floats (rounded to Element), skipping those past the row's end.
template <class Element, int kVec>
__device__ __forceinline__ void store_row(Element* row, const float* f, int vectors, const LanePlace& at) {
#pragma unroll
  for (int s = 0; s < kVec; ++s) {
    const int index = s * at.lanes + at.sub;
    if (index < vectors) store16(row + index * kElemsPerVector<Element>, pack<Element>(f + s * kElemsPerVector<Element>));
  }
}

/// Stores this lane's vectors of an f32 row (kVec vectors of kElems floats each), skipping those past `vectors`.
template <int kVec, int kElems>
__device__ __forceinline__ void store_floats(float* row, const float* f, int vectors, const LanePlace& at) {
#pragma unroll
  for (int s = 0; s < kVec; ++s) {
    const int index = s * at.lanes + at.sub;
    if (index < vectors)
#pragma unroll
      for (int w = 0; w < kElems; w += 4) {
        const float* x = f + s * kElems + w;
        store16(row + index * kElems + w,
                uint4{float_to_word(x[0]), float_to_word(x[1]), float_to_word(x[2]), float_to_word(x[3])});
      }
  }
}

/// Element pointer of (node, head) in a [N, H, D] operand.
template <class Element>
__device__ __forceinline__ const Element* row_at(const RowsRef& t, int64_t node, int64_t head) {
  return static_cast<const Element*>(t.data) + node * t.token + head * t.head;
}
template <class Element>
__device__ __forceinline__ Element* row_at(const MutRowsRef& t, int64_t node, int64_t head) {
  return static_cast<Element*>(t.data) + node * t.token + head * t.head;
}

/// Entries base + u * groups + group (u < kSteps) of a CSR list ending at `end`: list[e], or -1 past the end.
/// The groups of a warp read consecutive entries (one transaction per step).
template <int kSteps>
__device__ __forceinline__ void fetch_entries(int32_t (&out)[kSteps], const int32_t* list, int64_t base, int64_t end,
                                              const LanePlace& at) {
#pragma unroll
  for (int u = 0; u < kSteps; ++u) {
    const int64_t e = base + static_cast<int64_t>(u) * at.groups + at.group;
    out[u] = e < end ? list[e] : -1;
  }
}

/// The K and V rows (KV head kv_head) of this group's kSteps key nodes `key` (-1: past the row, zeros, nothing
/// read), every load issued before any is used: the forward and the dQ pass walk their rows this way.
template <class Element, int kVec, int kSteps>
__device__ __forceinline__ void load_step_kv(uint4 (&k_vec)[kSteps][kVec], uint4 (&v_vec)[kSteps][kVec],
                                             const int32_t (&key)[kSteps], const RowsRef& k, const RowsRef& v,
                                             int kv_head, const LaneGeometry& lanes, const LanePlace& at) {
#pragma unroll
  for (int u = 0; u < kSteps; ++u) {
    const int64_t j = key[u] >= 0 ? key[u] : 0;
    load_row<Element, kVec>(k_vec[u], row_at<Element>(k, j, kv_head), key[u] >= 0, lanes.vec_k, at);
    load_row<Element, kVec>(v_vec[u], row_at<Element>(v, j, kv_head), key[u] >= 0, lanes.vec_v, at);
  }
}

}  // namespace omniattn::detail::cuda::graph
