#pragma once
// The passes of the CPU backward (backward.cpp runs them in this order):
//   q   per (b, q head, query block):   D_i = Σ_j P_ij dP_ij, the sink-logit gradient's share, dQ = Σ dS K
//   kv  per (b, kv head, key block):    dV = Σ Pᵀ dO, dK = Σ dSᵀ Q over the group's query heads (reads D)
// Each task writes only its own rows, so the passes are race-free and bitwise reproducible.
//
// Both passes recompute S bitwise as the forward did (scale folded into Q, the same FMA order), so a row
// that sees one key gets P = 1 exactly, and D from P and dP then makes dP - D = 0 exactly, as the math says.
#include <cstdint>

#include "core/problem.hpp"
#include "cpu/parallel.hpp"

namespace omniattn::detail::cpu {

/// Per (b, h, query) statistics the dQ pass writes and the dK/dV pass reads, f32, head-major per sequence
/// (sequence b's rows start at seq_start[b]):
///   delta  D = Σ_j P dP (= rowsum(dO ∘ O))
///   lse    the LSE that P is taken against (the given one, renormalized; +inf for a row that sees nothing)
struct RowStats {
  float* delta = nullptr;
  float* lse = nullptr;
  const int64_t* seq_start = nullptr;
  const int64_t* q_len = nullptr;
  float* delta_row(int64_t b, int64_t h) const { return delta + seq_start[b] + h * q_len[b]; }
  float* lse_row(int64_t b, int64_t h) const { return lse + seq_start[b] + h * q_len[b]; }
};

int64_t backward_block_k();
WorkspaceSize backward_kv_workspace(const BackwardProblem& p);
/// dK, dV of keys [j0, j0 + n_keys) of (b, kv head), n_keys <= the block (inside one mask KV block).
void backward_kv_task(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t kvh, int64_t j0,
                      int64_t n_keys, const Workspace& ws);

int64_t backward_block_q();
WorkspaceSize backward_q_workspace(const BackwardProblem& p);
/// Statistics and dQ of queries [q0, q0 + rows) of (b, q head), rows <= the block (inside one mask query
/// block); returns -Σ_i exp(sink - lse_i) · D_i over
/// them (0 without sink logits).
double backward_q_task(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t h, int64_t q0,
                       int64_t rows, const Workspace& ws);

}  // namespace omniattn::detail::cpu
