// CPU backward, second pass: dK and dV of one key block, one task per (batch, KV head, key block).
//
// Keys sit in the lanes here (the task owns them), queries in rows:
//   K^T (D, Bn) and V^T (Dv, Bn), f32                        -- packed once per task
//   for every query head of the group, every query block that sees these keys:
//     S  (Bm, Bn) = Q · K^T        Q rows pre-scaled, as broadcasts
//     dP (Bm, Bn) = dO · V^T
//     P = exp(ScoreMod(S) - lse), masked; dS = P ∘ (dP - D) ∘ d logit/d s
//     dV (Bn, Dv) += Pᵀ · dO       P read transposed as broadcasts, dO rows as vectors
//     dK (Bn, D)  += dSᵀ · Q       (the pre-scaled Q is exactly d s / d k)
//   dK, dV rounded to the input dtype.
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
#define HWY_TARGET_INCLUDE "cpu/backward_kv.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "cpu/tile_gemm-inl.h"
#include "cpu/tile_ops-inl.h"
#include "cpu/tuning-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace omniattn::detail::cpu {
namespace HWY_NAMESPACE {
namespace {

constexpr int64_t kBm = Tuning::kBackwardBlockQ;  // queries per step
constexpr int64_t kBn = Tuning::kBackwardBlockK;  // keys per task

struct KvLayout {
  int64_t k_t, v_t, dk, dv, q_pack, do_pack, s, dp, dlogit, floats;
  explicit KvLayout(const Problem& p) {
    TileCarver tiles;
    const int64_t d_pad = RoundUpToLanes(p.d), dv_pad = RoundUpToLanes(p.dv);
    k_t = tiles.take(p.d * kBn);       // (D, Bn)      K^T
    v_t = tiles.take(p.dv * kBn);      // (Dv, Bn)     V^T
    dk = tiles.take(kBn * d_pad);      // (Bn, D)      accumulator
    dv = tiles.take(kBn * dv_pad);     // (Bn, Dv)     accumulator
    q_pack = tiles.take(kBm * d_pad);  // (Bm, D)      scale · Q rows, padded to whole vectors
    do_pack = tiles.take(kBm * dv_pad);// (Bm, Dv)     dO rows likewise
    s = tiles.take(kBm * kBn);         // (Bm, Bn)     S, then P
    dp = tiles.take(kBm * kBn);        // (Bm, Bn)     dP, then dS
    dlogit = tiles.take(kBm * kBn);    // (Bm, Bn)     d logit / d dot (softcap only)
    floats = tiles.floats;
  }
};

// Rows of an operand in f32 with whole vectors per row: in place for f32 with a lane-multiple width,
// else converted and zero-padded into `pack`.
template <class T>
VectorRows RowsAsF32(const T* src, int64_t src_row, int64_t rows, int64_t cols, float* pack) {
  if constexpr (std::is_same_v<T, float>) {
    if (cols % kLanes == 0) return {src, src_row};
  }
  const int64_t padded = RoundUpToLanes(cols);
  PackRows(src, src_row, rows, cols, 1.0f, pack, padded);
  return {pack, padded};
}

template <class T>
void KvTaskT(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t kvh, int64_t j0, int64_t n_keys,
             const Workspace& ws) {
  const KvLayout lay(p);
  float* k_t = ws.floats + lay.k_t;
  float* v_t = ws.floats + lay.v_t;
  float* dk = ws.floats + lay.dk;
  float* dv = ws.floats + lay.dv;
  float* s = ws.floats + lay.s;
  float* dp = ws.floats + lay.dp;
  float* dlogit = ws.floats + lay.dlogit;

  const SequenceMask mask = p.mask(b);
  const int64_t k_vecs = VecsFor(n_keys);
  const int64_t d = p.d, dv_dim = p.dv, d_pad = RoundUpToLanes(d), dv_pad = RoundUpToLanes(dv_dim);
  const int64_t key_token = p.k_begin[b] + j0;
  PackTransposed(p.k.at<T>(b, key_token, kvh), p.k.token, n_keys, d, 1.0f, k_t, kBn);
  PackTransposed(p.v.at<T>(b, key_token, kvh), p.v.token, n_keys, dv_dim, 1.0f, v_t, kBn);
  std::fill(dk, dk + n_keys * d_pad, 0.0f);
  std::fill(dv, dv + n_keys * dv_pad, 0.0f);
  const bool ragged_keys = n_keys != k_vecs * kLanes;

  const DF df;
  for (int64_t g = 0; g < p.group(); ++g) {
    const int64_t h = kvh * p.group() + g;
    const VecScoreMod mod(p.score_mod<float>(b, h));
    const float* delta_row = stats.delta_row(b, h);
    const float* lse_row = stats.lse_row(b, h);
    // Every query block without a block mask; with one, the query blocks that list these keys.
    for_each_query_chunk(p, b, h, j0, kBm, [&](int64_t i0, int64_t rows, bool element_masked) {
      const SequenceMask::Tile tile = mask.classify(i0, i0 + rows, j0, j0 + n_keys);
      if (tile == SequenceMask::Tile::empty) return;
      const int64_t q_token = p.q_begin[b] + i0;
      // Scale folded into Q as in the forward, so S is bitwise the forward's.
      const VectorRows q{ws.floats + lay.q_pack, d_pad};
      PackRows(p.q.at<T>(b, q_token, h), p.q.token, rows, d, mod.scale, ws.floats + lay.q_pack, d_pad);
      const VectorRows dout = RowsAsF32(p.dout.at<T>(b, q_token, h), p.dout.token, rows, dv_dim,
                                        ws.floats + lay.do_pack);

      // S (rows, Bn) = scale·Q (rows, D) · K^T ;  dP (rows, Bn) = dO (rows, Dv) · V^T
      TileGemm<Tuning::KeyMajorTile, false>(rows, k_vecs, d, {q.data, q.row, 1}, {k_t, kBn}, {s, kBn});
      TileGemm<Tuning::KeyMajorTile, false>(rows, k_vecs, dv_dim, {dout.data, dout.row, 1}, {v_t, kBn}, {dp, kBn});

      for (int64_t i = 0; i < rows; ++i) {
        const int64_t qi = i0 + i;
        float* s_row = s + i * kBn;
        float* dp_row = dp + i * kBn;
        float* dl_row = dlogit + i * kBn;
        if (!mod.identity())
          mod.Apply(s_row, k_vecs, static_cast<float>(mask.diag(qi) - j0), -1.0f, mod.softcap > 0 ? dl_row : nullptr);
        if (tile == SequenceMask::Tile::partial || ragged_keys)
          MaskQueryRow(s_row, k_vecs, j0, n_keys, mask.key_begin(qi), mask.key_end(qi), p.sinks);
        if (element_masked) mask_elements(p, b, h, qi, 1, j0, n_keys, s_row, 0, 1);
        const VF v_lse = hn::Set(df, lse_row[qi]);  // +inf for a row that sees no key: P = 0
        const VF v_delta = hn::Set(df, delta_row[qi]);
        for (int64_t v = 0; v < k_vecs; ++v) {
          const VF pv = ExpSoftmax(df, hn::Sub(hn::Load(df, s_row + v * kLanes), v_lse));
          const VF dl = mod.softcap > 0 ? hn::Load(df, dl_row + v * kLanes) : hn::Set(df, 1.0f);
          hn::Store(pv, df, s_row + v * kLanes);
          hn::Store(hn::Mul(hn::Mul(pv, hn::Sub(hn::Load(df, dp_row + v * kLanes), v_delta)), dl), df,
                    dp_row + v * kLanes);
        }
      }
      // dV (n_keys, Dv) += P^T (n_keys, rows) · dO (rows, Dv) ;  dK (n_keys, D) += dS^T · Q
      TileGemm<Tuning::GradTile, true>(n_keys, dv_pad / kLanes, rows, {s, 1, kBn}, dout, {dv, dv_pad});
      TileGemm<Tuning::GradTile, true>(n_keys, d_pad / kLanes, rows, {dp, 1, kBn}, q, {dk, d_pad});
    });
  }
  for (int64_t j = 0; j < n_keys; ++j) {
    StoreScaled(dk + j * d_pad, d, 1.0f, p.grad_k.at<T>(b, key_token + j, kvh));
    StoreScaled(dv + j * dv_pad, dv_dim, 1.0f, p.grad_v.at<T>(b, key_token + j, kvh));
  }
}

}  // namespace

int64_t KvBlock() { return kBn; }

WorkspaceSize KvWorkspace(const BackwardProblem& p) { return {KvLayout(p).floats, 0}; }

void KvTask(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t kvh, int64_t j0, int64_t n_keys,
            const Workspace& ws) {
  switch (p.dtype) {
    case DType::f32: KvTaskT<float>(p, stats, b, kvh, j0, n_keys, ws); break;
    case DType::bf16: KvTaskT<bf16_t>(p, stats, b, kvh, j0, n_keys, ws); break;
    case DType::f16: KvTaskT<f16_t>(p, stats, b, kvh, j0, n_keys, ws); break;
    default: break;  // refused by can_run
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace omniattn::detail::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace omniattn::detail::cpu {

HWY_EXPORT(KvBlock);
HWY_EXPORT(KvWorkspace);
HWY_EXPORT(KvTask);

int64_t backward_block_k() { return HWY_DYNAMIC_DISPATCH(KvBlock)(); }
WorkspaceSize backward_kv_workspace(const BackwardProblem& p) { return HWY_DYNAMIC_DISPATCH(KvWorkspace)(p); }
void backward_kv_task(const BackwardProblem& p, const RowStats& stats, int64_t b, int64_t kvh, int64_t j0,
                      int64_t n_keys, const Workspace& ws) {
  HWY_DYNAMIC_DISPATCH(KvTask)(p, stats, b, kvh, j0, n_keys, ws);
}

}  // namespace omniattn::detail::cpu
#endif  // HWY_ONCE
