// CPU backward, first pass: D and dQ of one query block, one task per (batch, query head, query block).
//
// Queries sit in the lanes here (the task owns them), keys in rows, as in the forward:
//   Q^T (D, Bm) pre-scaled and dO^T (Dv, Bm), f32                     -- packed once per task
//   sweep 1 over the key blocks: D (Bm) = Σ_j P^T[j] ∘ dP^T[j]         (also written for the dK/dV pass)
//   sweep 2, every key block the mask does not rule out:
//     S^T  (Bn, Bm) = K · Q^T       K rows read in place (f32) as broadcasts
//     dP^T (Bn, Bm) = V · dO^T
//     P^T = exp(ScoreMod(S^T) - lse), masked; dS^T = P^T ∘ (dP^T - D) ∘ d logit/d s
//     dQ (Bm, D) += dS · K          dS read transposed as broadcasts, K rows as vectors
//   scale · dQ rounded to the input dtype.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dtype.hpp"
#include "core/problem.hpp"
#include "cpu/backward_passes.hpp"
#include "cpu/parallel.hpp"
#include "cpu/simd_targets.hpp"
#include "cpu/sparse_chunks.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/backward_q.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "cpu/tile_gemm-inl.h"
#include "cpu/tile_ops-inl.h"
#include "cpu/tuning-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace omniattn::detail::cpu {
namespace HWY_NAMESPACE {
namespace {

constexpr int64_t kBm = Tuning::kBackwardBlockQ;  // queries per task
constexpr int64_t kBn = Tuning::kBackwardBlockK;  // keys per block

struct QLayout {
  int64_t q_t, do_t, dq, k_pack, v_pack, s_t, dp_t, dlogit_t, lse, delta, prob_sum, floats;
  explicit QLayout(const Problem& p) {
    TileCarver tiles;
    const int64_t d_pad = RoundUpToLanes(p.d);
    q_t = tiles.take(p.d * kBm);        // (D, Bm)    scale · Q^T
    do_t = tiles.take(p.dv * kBm);      // (Dv, Bm)   dO^T
    dq = tiles.take(kBm * d_pad);       // (Bm, D)    accumulator
    k_pack = tiles.take(kBn * d_pad);   // (Bn, D)    K rows converted / padded when not usable in place
    v_pack = tiles.take(kBn * p.dv);    // (Bn, Dv)   V rows converted (bf16/f16)
    s_t = tiles.take(kBn * kBm);        // (Bn, Bm)   S^T, then P^T
    dp_t = tiles.take(kBn * kBm);       // (Bn, Bm)   dP^T, then dS^T
    dlogit_t = tiles.take(kBn * kBm);   // (Bn, Bm)   d logit / d dot (softcap only)
    lse = tiles.take(kBm);
    delta = tiles.take(kBm);            // D per lane
    prob_sum = tiles.take(kBm);         // Σ_j P per lane
    floats = tiles.floats;
  }
};

// The task's fixed state: packed Q^T and dO^T, per-lane LSE and D, and its key ranges.
struct QTask {
  const BackwardProblem& p;
  const QLayout lay;
  const Workspace& ws;
  int64_t b, h, q0, rows, q_vecs;
  SequenceMask mask;
  VecScoreMod mod;
  float* at(int64_t offset) const { return ws.floats + offset; }
};

// For one key block: P^T (into s_t) and dP^T (into dp_t), and d logit / d s (softcap, into dlogit_t).
// Returns the block's K rows as f32 vectors (for dQ += dS K), or data = nullptr when the mask rules the
// block out. Bitwise the same S as the forward (same operands, same FMA order).
template <class T>
VectorRows ProbabilityBlock(const QTask& t, int64_t j0, int64_t n_keys, bool element_masked) {
  const BackwardProblem& p = t.p;
  const SequenceMask::Tile tile = t.mask.classify(t.q0, t.q0 + t.rows, j0, j0 + n_keys);
  if (tile == SequenceMask::Tile::empty) return {nullptr, 0};
  const int64_t kvh = t.h / p.group(), d = p.d, dv = p.dv, d_pad = RoundUpToLanes(d);
  const T* k_rows = p.k.at<T>(t.b, p.k_begin[t.b] + j0, kvh);
  const T* v_rows = p.v.at<T>(t.b, p.k_begin[t.b] + j0, kvh);
  VectorRows keys{t.at(t.lay.k_pack), d_pad};
  ScalarMatrix values{t.at(t.lay.v_pack), dv, 1};
  if constexpr (std::is_same_v<T, float>) {
    if (d % kLanes == 0) keys = {k_rows, p.k.token};
    else PackRows(k_rows, p.k.token, n_keys, d, 1.0f, t.at(t.lay.k_pack), d_pad);
    values = {v_rows, p.v.token, 1};
  } else {
    PackRows(k_rows, p.k.token, n_keys, d, 1.0f, t.at(t.lay.k_pack), d_pad);
    PackRows(v_rows, p.v.token, n_keys, dv, 1.0f, t.at(t.lay.v_pack), dv);
  }
  float* s_t = t.at(t.lay.s_t);
  float* dlogit_t = t.at(t.lay.dlogit_t);
  const float* lse = t.at(t.lay.lse);
  // S^T (n_keys, Bm) = K (n_keys, D) · scale·Q^T ;  dP^T (n_keys, Bm) = V (n_keys, Dv) · dO^T
  TileGemm<Tuning::ScoreTile, false>(n_keys, t.q_vecs, d, {keys.data, keys.row, 1}, {t.at(t.lay.q_t), kBm},
                                     {s_t, kBm});
  TileGemm<Tuning::ScoreTile, false>(n_keys, t.q_vecs, dv, values, {t.at(t.lay.do_t), kBm}, {t.at(t.lay.dp_t), kBm});
  const DF df;
  const int32_t* key_begin = t.ws.ints;
  const int32_t* key_end = t.ws.ints + kBm;
  for (int64_t j = 0; j < n_keys; ++j) {
    float* s_row = s_t + j * kBm;
    if (!t.mod.identity())
      t.mod.Apply(s_row, t.q_vecs, static_cast<float>(t.mask.diag(t.q0) - (j0 + j)), 1.0f,
                  t.mod.softcap > 0 ? dlogit_t + j * kBm : nullptr);
    if (tile == SequenceMask::Tile::partial) MaskKeyRow(s_row, t.q_vecs, j0 + j, p.sinks, key_begin, key_end);
    if (element_masked) mask_elements(p, t.b, t.h, t.q0, t.rows, j0 + j, 1, s_row, 1, 0);
    for (int64_t v = 0; v < t.q_vecs; ++v)
      hn::Store(ExpSoftmax(df, hn::Sub(hn::Load(df, s_row + v * kLanes), hn::Load(df, lse + v * kLanes))), df,
                s_row + v * kLanes);
  }
  return keys;
}

template <class T>
double QTaskT(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t h, int64_t q0, int64_t rows,
              const Workspace& ws) {
  const int64_t q_vecs = VecsFor(rows), padded_rows = q_vecs * kLanes;
  const QTask t{p, QLayout(p), ws, b, h, q0, rows, q_vecs, p.mask(b), VecScoreMod(p.score_mod<float>(b, h))};
  float* do_t = t.at(t.lay.do_t);
  float* dq = t.at(t.lay.dq);
  const float* p_t = t.at(t.lay.s_t);
  float* dp_t = t.at(t.lay.dp_t);
  const float* dlogit_t = t.at(t.lay.dlogit_t);
  float* lse = t.at(t.lay.lse);
  float* row_delta = t.at(t.lay.delta);
  float* prob_sum = t.at(t.lay.prob_sum);
  const int64_t d = p.d, dv = p.dv, d_pad = RoundUpToLanes(d), q_token = p.q_begin[b] + q0;

  PackTransposed(p.q.at<T>(b, q_token, h), p.q.token, rows, d, t.mod.scale, t.at(t.lay.q_t), kBm);
  PackTransposed(p.dout.at<T>(b, q_token, h), p.dout.token, rows, dv, 1.0f, do_t, kBm);
  FillKeyRanges(t.mask, q0, rows, padded_rows, ws.ints, ws.ints + kBm);
  // Padded lanes and rows that see no key (lse = -inf) get P = 0: subtract +inf.
  for (int64_t i = 0; i < padded_rows; ++i) {
    const float l = i < rows ? p.lse.at(b, h, q_token + i) : std::numeric_limits<float>::infinity();
    lse[i] = std::isinf(l) ? std::numeric_limits<float>::infinity() : l;
  }

  // Sweep 1: D_i = Σ_j P_ij dP_ij (= rowsum(dO ∘ O) in exact arithmetic) and Σ_j P_ij, in key order.
  // Taking D from the given O instead saves two products but is measurably less accurate: O carries its
  // own rounding (to bf16/f16 especially), and dP - D loses the exact cancellation the math has.
  const DF df;
  const int64_t key_stop = t.mask.key_end(q0 + rows - 1);
  std::fill(row_delta, row_delta + kBm, 0.0f);
  std::fill(prob_sum, prob_sum + kBm, 0.0f);
  for_each_key_chunk(p, b, h, q0, key_stop, kBn, [&](int64_t j0, int64_t n_keys, bool element_masked) {
    if (!ProbabilityBlock<T>(t, j0, n_keys, element_masked).data) return;
    for (int64_t j = 0; j < n_keys; ++j)
      for (int64_t v = 0; v < q_vecs; ++v) {
        const VF pv = hn::Load(df, p_t + j * kBm + v * kLanes);
        const VF dpv = hn::Load(df, dp_t + j * kBm + v * kLanes);
        hn::Store(hn::MulAdd(pv, dpv, hn::Load(df, row_delta + v * kLanes)), df, row_delta + v * kLanes);
        hn::Store(hn::Add(pv, hn::Load(df, prob_sum + v * kLanes)), df, prob_sum + v * kLanes);
      }
  });
  // Renormalize with the LSE these keys (and the sink logit) actually give: Σ_j P + exp(sink - lse) should
  // be 1, and is 1 + O(error of the given f32 LSE). Dividing it out makes P, D and d(sink) as accurate as a
  // recomputed LSE (and still exact for a row that sees one key: the sum is then exactly 1).
  double dsink = 0.0;
  float* stats_lse = stats.lse_row(b, h) + q0;
  float* stats_delta = stats.delta_row(b, h) + q0;
  for (int64_t i = 0; i < rows; ++i) {
    if (!std::isinf(lse[i])) {
      const double sink_prob = p.sink_logits ? std::exp(double(p.sink_logits[h]) - double(lse[i])) : 0.0;
      const double total = double(prob_sum[i]) + sink_prob;
      if (total > 0.0 && total != 1.0) {
        lse[i] = static_cast<float>(double(lse[i]) + std::log(total));
        row_delta[i] = static_cast<float>(double(row_delta[i]) / total);
      }
      // d(sink) share: -exp(sink - lse_i) · D_i.
      if (p.sink_logits && total > 0.0) dsink -= sink_prob / total * double(row_delta[i]);
    }
    stats_lse[i] = lse[i];
    stats_delta[i] = row_delta[i];
  }

  std::fill(dq, dq + kBm * d_pad, 0.0f);
  const VF one = hn::Set(df, 1.0f);
  for_each_key_chunk(p, b, h, q0, key_stop, kBn, [&](int64_t j0, int64_t n_keys, bool element_masked) {
    const VectorRows keys = ProbabilityBlock<T>(t, j0, n_keys, element_masked);
    if (!keys.data) return;
    for (int64_t j = 0; j < n_keys; ++j)
      for (int64_t v = 0; v < q_vecs; ++v) {
        const VF pv = hn::Load(df, p_t + j * kBm + v * kLanes);
        const VF dpv = hn::Load(df, dp_t + j * kBm + v * kLanes);
        const VF dl = t.mod.softcap > 0 ? hn::Load(df, dlogit_t + j * kBm + v * kLanes) : one;
        const VF ds = hn::Mul(hn::Mul(pv, hn::Sub(dpv, hn::Load(df, row_delta + v * kLanes))), dl);
        hn::Store(ds, df, dp_t + j * kBm + v * kLanes);
      }
    // dQ (rows, D) += dS (rows, n_keys) · K (n_keys, D), dS(i, j) = dS^T[j][i]
    TileGemm<Tuning::GradTile, true>(rows, d_pad / kLanes, n_keys, {dp_t, 1, kBm}, keys, {dq, d_pad});
  });
  // dS was taken with respect to s = scale·q·k: d/dq carries one more factor scale.
  for (int64_t i = 0; i < rows; ++i) StoreScaled(dq + i * d_pad, d, t.mod.scale, p.grad_q.at<T>(b, q_token + i, h));

  return dsink;
}

}  // namespace

int64_t QBlock() { return kBm; }

WorkspaceSize QWorkspace(const BackwardProblem& p) { return {QLayout(p).floats, 2 * kBm}; }

double QTask(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t h, int64_t q0, int64_t rows,
             const Workspace& ws) {
  switch (p.dtype) {
    case DType::f32: return QTaskT<float>(p, stats, b, h, q0, rows, ws);
    case DType::bf16: return QTaskT<bf16_t>(p, stats, b, h, q0, rows, ws);
    case DType::f16: return QTaskT<f16_t>(p, stats, b, h, q0, rows, ws);
    default: return 0.0;  // refused by can_run
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace omniattn::detail::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace omniattn::detail::cpu {

HWY_EXPORT(QBlock);
HWY_EXPORT(QWorkspace);
HWY_EXPORT(QTask);

int64_t backward_block_q() { return HWY_DYNAMIC_DISPATCH(QBlock)(); }
WorkspaceSize backward_q_workspace(const BackwardProblem& p) { return HWY_DYNAMIC_DISPATCH(QWorkspace)(p); }
double backward_q_task(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t h, int64_t q0,
                       int64_t rows, const Workspace& ws) {
  return HWY_DYNAMIC_DISPATCH(QTask)(p, stats, b, h, q0, rows, ws);
}

}  // namespace omniattn::detail::cpu
#endif  // HWY_ONCE
