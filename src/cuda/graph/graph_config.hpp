#pragma once
// Tuning and lane geometry of the CUDA graph-attention kernels; host (launch) and kernels read the same values.
//
// The kernels are gathers: each edge reads one K row and one V row (D = 128 bf16: 2 x 256 bytes) from wherever its
// key node lives, and does a few FLOPs per byte, so they are memory pipes whose speed is the bytes in flight per SM
// (~1 us x 4.8 TB/s / 132 SMs ~ 36 KB). A warp walks one CSR row; its lane groups take consecutive edges and each
// lane issues 2 x kEdgesPerGroup (x kVec) 16-byte loads before it uses any, with the next step's key indices
// fetched before the math of this one: 64 B per lane in flight, ~64 KB per SM at half occupancy.
#include <cstdint>

#include "cuda/graph/graph_params.hpp"

namespace omniattn::detail::cuda::graph {

inline constexpr int kWarpsPerCta = 4;  // warps are independent: the CTA size only sets launch granularity
inline constexpr int kThreadsPerCta = 32 * kWarpsPerCta;
inline constexpr int kEdgesPerGroup = 2;  // edges (dK/dV pass: (edge, head) pairs) per lane group per step
inline constexpr int kFwdMaxHeads = 4;    // query heads of one KV head per forward warp (share each K/V load)
inline constexpr int kBwdMaxHeads = 2;    // same for the dQ pass (it holds q, dO and dQ per head in registers)
inline constexpr int kMaxHeadDim = 256;   // D and Dv
// Longest list one warp item walks: longer rows (hub nodes; key nodes of many queries in the dK/dV pass) split into
// items of this many entries whose f32 partials are merged after (graph_split.hpp). 256 edges are ~64 steps of a
// warp (~50 us latency-bound): no single warp outlasts a million-edge pass, and typical rows never split.
inline constexpr int kSplitEntries = 256;

/// Lanes per group and 16-byte vectors per row for head dims d, dv of `element_bytes`-byte elements: the smallest
/// power-of-two group that covers the longer row with one vector per lane, else 32 lanes with two.
constexpr LaneGeometry lane_geometry(int d, int dv, int element_bytes) {
  const int per_vector = 16 / element_bytes;
  LaneGeometry g;
  g.vec_k = d / per_vector;
  g.vec_v = dv / per_vector;
  const int longest = g.vec_k > g.vec_v ? g.vec_k : g.vec_v;
  while ((1 << g.lane_shift) < longest && g.lane_shift < 5) ++g.lane_shift;
  return g;
}
/// 16-byte vectors of a row per lane (the kernels' kVec): 1, or 2 for f32 rows longer than 128.
constexpr int vectors_per_lane(const LaneGeometry& g) {
  const int longest = g.vec_k > g.vec_v ? g.vec_k : g.vec_v;
  const int lanes = 1 << g.lane_shift;
  return (longest + lanes - 1) / lanes;
}
/// Query heads per warp (a kernel template argument): 1, 2 or `max_heads`, the smallest covering the group.
constexpr int heads_per_warp(int group, int max_heads) { return group <= 1 ? 1 : group <= 2 ? 2 : max_heads; }

static_assert(vectors_per_lane(lane_geometry(256, 256, 2)) == 1, "16-bit rows take one vector per lane");
static_assert(vectors_per_lane(lane_geometry(256, 256, 4)) == 2, "f32 rows take at most two");
static_assert(lane_geometry(64, 64, 2).lane_shift == 3 && lane_geometry(128, 128, 2).lane_shift == 4,
              "D = 64: 8 lanes per edge (4 edges per warp at once); D = 128: 16 lanes");
static_assert(lane_geometry(192, 128, 2).lane_shift == 5, "D = 192: 32 lanes, 24 of them hold K");
static_assert(kFwdMaxHeads == 4 && kBwdMaxHeads == 2, "the launch instantiates heads 1, 2 and these");

}  // namespace omniattn::detail::cuda::graph
