#pragma once
// Arguments of the CUDA graph-attention kernels (src/cuda/graph): plain device pointers, element strides and the
// lane geometry. Tensors are [N, H, D] with a contiguous head dim; every row starts 16-byte aligned (graph_cuda.cu
// checks) so that a lane moves 16 bytes per load.
#include <cstdint>

#include "cuda/graph/graph_split.hpp"

namespace omniattn::detail::cuda::graph {

/// A [N, H, D] operand: element (node, head, c) at data + node * token + head * head + c.
struct RowsRef {
  const void* data = nullptr;
  int64_t token = 0, head = 0;
};
struct MutRowsRef {
  void* data = nullptr;
  int64_t token = 0, head = 0;
};

/// Where a row of a graph kernel lives on the lanes of a warp. A warp owns one (node, KV head) item and splits
/// into 32 / lanes lane groups; a group holds one edge's K/V row: lane s of the group holds 16-byte vectors
/// s, s + lanes, ... of it (kVec of them). All groups of the warp walk the same CSR row, each its own edges.
struct LaneGeometry {
  int32_t lane_shift = 0;  // log2(lanes per group), 0..5
  int32_t vec_k = 0;       // 16-byte vectors per row of q / k (D)
  int32_t vec_v = 0;       // 16-byte vectors per row of v / out (Dv)
};

/// Logit of a dot product q.k: scale * q.k, or with softcap > 0 softcap * tanh(scale * q.k / softcap) (the CPU
/// path's formula). Kernels work in the log2 domain (logit * log2(e)).
struct LogitRule {
  float scale = 1.0f;       // softmax_scale
  float softcap = 0.0f;     // 0 = off
  float scale_log2 = 1.0f;  // scale * log2(e) (the fast path without softcap)
};

/// A split row's partial softmax state per (slot, query head): running max (log2 domain) and sum.
struct PartialMax {
  float max_log2, sum;
};

struct GraphFwdParams {
  RowsRef q, k, v;
  MutRowsRef out;
  float* lse = nullptr;  // [Hq, Nq] f32, optional (null: not written)
  int64_t lse_head = 0, lse_token = 0;
  const int32_t* row_offsets = nullptr;  // [Nq + 1], validated
  const int32_t* col_indices = nullptr;  // [nnz], validated
  int64_t nq = 0;
  int64_t items = 0;  // warp items (times Hkv x chunks warps): Nq, or the plan's bound
  SplitPlan plan;     // rows of more than plan.per_item edges split (items null: none)
  int64_t slots = 0;  // bound on the plan's partial slots (merge warps: slots x Hq)
  float* part_acc = nullptr;  // [slots, Hq, Dv] unnormalized O of split rows' items
  PartialMax* part_max = nullptr;  // [slots, Hq]
  int32_t hq = 0, hkv = 0, group = 0;  // group = Hq / Hkv query heads per KV head
  int32_t chunks = 0;          // warps per (node, KV head): ceil(group / heads per warp)
  LaneGeometry lanes;
  LogitRule logit;
};

/// Per (query node, query head) row statistics written by the dQ pass for the dK/dV pass: the LSE in the log2
/// domain (+inf where the given LSE is infinite: P = 0 there, as on the CPU) and D = rowsum(dO o O).
struct alignas(8) RowStat {
  float lse_log2;
  float delta;
};

struct GraphBwdParams {
  RowsRef q, k, v, out, dout;
  MutRowsRef dq, dk, dv;
  const float* lse = nullptr;  // [Hq, Nq] f32
  int64_t lse_head = 0, lse_token = 0;
  const int32_t* row_offsets = nullptr;  // CSR: query node -> key nodes
  const int32_t* col_indices = nullptr;
  const int32_t* t_offsets = nullptr;  // transposed CSR [Nk + 1]: key node -> query nodes
  const int32_t* t_sources = nullptr;  // [nnz] query node of each transposed entry, ascending per key node
  RowStat* stats = nullptr;            // [Nq, Hq] (node-major: a key's pass reads a node's heads together)
  int64_t nq = 0, nk = 0;
  int64_t q_items = 0, kv_items = 0;  // warp items of the two passes (rows, or their plans' bounds)
  SplitPlan q_plan, kv_plan;          // over the CSR and over the transposed CSR
  int64_t q_slots = 0, kv_slots = 0;  // bounds on their partial slots
  float* part_dq = nullptr;           // [q slots, Hq, D]
  float* part_dk = nullptr;           // [kv slots, Hkv, D]
  float* part_dv = nullptr;           // [kv slots, Hkv, Dv]
  int32_t hq = 0, hkv = 0, group = 0;
  int32_t chunks = 0;  // dQ pass: warps per (query node, KV head)
  LaneGeometry lanes;
  LogitRule logit;
};

}  // namespace omniattn::detail::cuda::graph
