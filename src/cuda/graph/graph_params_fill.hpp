#pragma once
// Kernel arguments from a validated attention Problem and graph (host code, shared by the launch in graph_cuda.cu
// and the emulator tests). Workspace pointers (transposed graph, row statistics) are the caller's.
#include "core/problem.hpp"
#include "cuda/graph/graph_check_types.hpp"
#include "cuda/graph/graph_config.hpp"
#include "cuda/graph/graph_params.hpp"

namespace omniattn::detail::cuda::graph {

inline int element_bytes(DType t) { return t == DType::f32 ? 4 : 2; }

inline RowsRef rows_of(const Operand& o) { return {o.data, o.token, o.head}; }
inline MutRowsRef mut_rows_of(const Operand& o) { return {o.data, o.token, o.head}; }

inline LogitRule logit_of(const Problem& p) {
  constexpr double kLog2eD = 1.4426950408889634;
  return {static_cast<float>(p.scale), static_cast<float>(p.softcap), static_cast<float>(p.scale * kLog2eD)};
}

/// Forward arguments; heads per warp = heads_per_warp(group, kFwdMaxHeads); warps = nq * hkv * chunks.
inline GraphFwdParams make_fwd_params(const ForwardProblem& p, const DeviceGraph& g) {
  GraphFwdParams k;
  k.q = rows_of(p.q), k.k = rows_of(p.k), k.v = rows_of(p.v);
  k.out = mut_rows_of(p.out);
  if (p.lse) k.lse = p.lse->data, k.lse_head = p.lse->head, k.lse_token = p.lse->token;
  k.row_offsets = g.row_offsets, k.col_indices = g.col_indices;
  k.nq = g.nq;
  k.items = g.nq;
  k.hq = static_cast<int32_t>(p.hq);
  k.hkv = static_cast<int32_t>(p.hkv), k.group = static_cast<int32_t>(p.group());
  const int heads = heads_per_warp(k.group, kFwdMaxHeads);
  k.chunks = (k.group + heads - 1) / heads;
  k.lanes = lane_geometry(static_cast<int>(p.d), static_cast<int>(p.dv), element_bytes(p.dtype));
  k.logit = logit_of(p);
  return k;
}

/// Backward arguments but t_offsets, t_sources, stats and plans (whole rows); dQ heads per warp = heads_per_warp(group, kBwdMaxHeads).
inline GraphBwdParams make_bwd_params(const BackwardProblem& p, const DeviceGraph& g) {
  GraphBwdParams k;
  k.q = rows_of(p.q), k.k = rows_of(p.k), k.v = rows_of(p.v), k.out = rows_of(p.out), k.dout = rows_of(p.dout);
  k.dq = mut_rows_of(p.grad_q), k.dk = mut_rows_of(p.grad_k), k.dv = mut_rows_of(p.grad_v);
  k.lse = p.lse.data, k.lse_head = p.lse.head, k.lse_token = p.lse.token;
  k.row_offsets = g.row_offsets, k.col_indices = g.col_indices;
  k.nq = g.nq, k.nk = g.nk;
  k.q_items = g.nq, k.kv_items = g.nk;
  k.hq = static_cast<int32_t>(p.hq), k.hkv = static_cast<int32_t>(p.hkv), k.group = static_cast<int32_t>(p.group());
  const int heads = heads_per_warp(k.group, kBwdMaxHeads);
  k.chunks = (k.group + heads - 1) / heads;
  k.lanes = lane_geometry(static_cast<int>(p.d), static_cast<int>(p.dv), element_bytes(p.dtype));
  k.logit = logit_of(p);
  return k;
}

}  // namespace omniattn::detail::cuda::graph
