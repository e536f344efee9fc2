// CPU forward: tiled online-softmax attention (FlashAttention), one task per (batch, head, query block).
//
// Per task, with Bm queries and Bn keys per block (tuning-inl.h):
//   Q^T tile (D, Bm) f32, pre-scaled by softmax_scale  -- packed once
//   for every key block that the mask does not rule out:
//     S^T (Bn, Bm) = K · Q^T          keys in rows, queries in lanes: K is read in place (f32) as broadcasts
//     logits = ScoreMod(S^T); -inf where masked (partial tiles only)
//     online softmax per query lane: running max m, rescale factor alpha, running sum l (no horizontal ops)
//     O (Bm, Dv) = alpha·O + P · V    P read as broadcasts from P^T, V rows in place (f32) as vectors
//   O / l (with the sink logit's exp in l), LSE = m + log l, rounded to the input dtype.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.hpp"
#include "core/problem.hpp"
#include "cpu/kernels.hpp"
#include "cpu/parallel.hpp"
#include "cpu/simd_targets.hpp"
#include "cpu/sparse_chunks.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/forward.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "cpu/tile_gemm-inl.h"
#include "cpu/tile_ops-inl.h"
#include "cpu/tuning-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace omniattn::detail::cpu {
namespace HWY_NAMESPACE {
namespace {

constexpr int64_t kBm = Tuning::kBlockQ;  // queries per task
constexpr int64_t kBn = Tuning::kBlockK;  // keys per block

// Offsets of one thread's tiles in its workspace (f32, each 64-byte aligned).
struct ForwardLayout {
  int64_t q_t, s_t, o, k_pack, v_pack, row_max, row_sum, alpha, floats;
  explicit ForwardLayout(const Problem& p) {
    TileCarver tiles;
    const int64_t dv_pad = RoundUpToLanes(p.dv);
    q_t = tiles.take(p.d * kBm);       // (D, Bm)
    s_t = tiles.take(kBn * kBm);       // (Bn, Bm)
    o = tiles.take(kBm * dv_pad);      // (Bm, Dv padded)
    k_pack = tiles.take(kBn * p.d);    // (Bn, D)        converted keys (bf16/f16)
    v_pack = tiles.take(kBn * dv_pad); // (Bn, Dv padded) converted values (bf16/f16, or Dv not a lane multiple)
    row_max = tiles.take(kBm);
    row_sum = tiles.take(kBm);
    alpha = tiles.take(kBm);
    floats = tiles.floats;
  }
};

// One key block's online-softmax step on S^T (n_keys, vecs·N), in place S -> P. Returns whether any
// query's running max moved (its O row then needs rescaling by alpha).
HWY_INLINE bool OnlineSoftmaxStep(float* HWY_RESTRICT s_t, int64_t n_keys, int64_t vecs, float* HWY_RESTRICT m,
                                  float* HWY_RESTRICT l, float* HWY_RESTRICT alpha) {
  const DF df;
  const VF neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  bool moved = false;
  for (int64_t v = 0; v < vecs; ++v) {
    float* col = s_t + v * kLanes;
    VF block_max = neg_inf;
    for (int64_t j = 0; j < n_keys; ++j) block_max = hn::Max(block_max, hn::Load(df, col + j * kBm));
    const VF m_old = hn::Load(df, m + v * kLanes);
    const VF m_new = hn::Max(m_old, block_max);
    // A query that has seen no key yet keeps m = -inf; subtract 0 instead so exp(-inf - -inf) is never taken.
    const VF m_use = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
    VF sum = hn::Zero(df);
    for (int64_t j = 0; j < n_keys; ++j) {
      const VF pj = ExpSoftmax(df, hn::Sub(hn::Load(df, col + j * kBm), m_use));
      hn::Store(pj, df, col + j * kBm);
      sum = hn::Add(sum, pj);
    }
    const VF a = ExpSoftmax(df, hn::Sub(m_old, m_use));
    hn::Store(hn::MulAdd(hn::Load(df, l + v * kLanes), a, sum), df, l + v * kLanes);
    hn::Store(m_new, df, m + v * kLanes);
    hn::Store(a, df, alpha + v * kLanes);
    moved |= !hn::AllTrue(df, hn::Eq(m_new, m_old));
  }
  return moved;
}

template <class T>
void ForwardTaskT(const ForwardProblem& p, int64_t b, int64_t h, int64_t q0, int64_t rows, const Workspace& ws) {
  const ForwardLayout lay(p);
  float* q_t = ws.floats + lay.q_t;
  float* s_t = ws.floats + lay.s_t;
  float* o = ws.floats + lay.o;
  float* m = ws.floats + lay.row_max;
  float* l = ws.floats + lay.row_sum;
  float* alpha = ws.floats + lay.alpha;
  int32_t* key_begin = ws.ints;
  int32_t* key_end = ws.ints + kBm;

  const SequenceMask mask = p.mask(b);
  const VecScoreMod mod(p.score_mod<float>(b, h));
  const int64_t q_vecs = VecsFor(rows);
  const int64_t kvh = h / p.group(), d = p.d, dv = p.dv, dv_pad = RoundUpToLanes(dv), dv_vecs = dv_pad / kLanes;

  PackTransposed(p.q.at<T>(b, p.q_begin[b] + q0, h), p.q.token, rows, d, mod.scale, q_t, kBm);
  FillKeyRanges(mask, q0, rows, q_vecs * kLanes, key_begin, key_end);
  std::fill(m, m + kBm, -std::numeric_limits<float>::infinity());
  std::fill(l, l + kBm, 0.0f);
  std::fill(o, o + kBm * dv_pad, 0.0f);

  constexpr bool kF32 = std::is_same_v<T, float>;
  const bool v_in_place = kF32 && dv % kLanes == 0;
  const int64_t key_stop = mask.key_end(q0 + rows - 1);
  // Every key block without a block mask; with one, the listed blocks only (partial ones element-masked).
  for_each_key_chunk(p, b, h, q0, key_stop, kBn, [&](int64_t j0, int64_t n_keys, bool element_masked) {
    const SequenceMask::Tile tile = mask.classify(q0, q0 + rows, j0, j0 + n_keys);
    if (tile == SequenceMask::Tile::empty) return;
    const T* k_rows = p.k.at<T>(b, p.k_begin[b] + j0, kvh);
    const T* v_rows = p.v.at<T>(b, p.k_begin[b] + j0, kvh);
    ScalarMatrix keys{nullptr, d, 1};
    if constexpr (kF32) {
      keys = {k_rows, p.k.token, 1};
    } else {
      PackRows(k_rows, p.k.token, n_keys, d, 1.0f, ws.floats + lay.k_pack, d);
      keys.data = ws.floats + lay.k_pack;
    }
    VectorRows values{ws.floats + lay.v_pack, dv_pad};
    if (v_in_place) {
      values = {reinterpret_cast<const float*>(v_rows), p.v.token};
    } else {
      PackRows(v_rows, p.v.token, n_keys, dv, 1.0f, ws.floats + lay.v_pack, dv_pad);
    }

    // S^T (n_keys, q_vecs·N) = K (n_keys, D) · Q^T (D, q_vecs·N)
    TileGemm<Tuning::ScoreTile, false>(n_keys, q_vecs, d, keys, {q_t, kBm}, {s_t, kBm});
    if (!mod.identity())
      for (int64_t j = 0; j < n_keys; ++j)
        mod.Apply(s_t + j * kBm, q_vecs, static_cast<float>(mask.diag(q0) - (j0 + j)), 1.0f, nullptr);
    if (tile == SequenceMask::Tile::partial)
      for (int64_t j = 0; j < n_keys; ++j) MaskKeyRow(s_t + j * kBm, q_vecs, j0 + j, p.sinks, key_begin, key_end);
    if (element_masked) mask_elements(p, b, h, q0, rows, j0, n_keys, s_t, 1, kBm);

    if (OnlineSoftmaxStep(s_t, n_keys, q_vecs, m, l, alpha)) {
      const DF df;
      for (int64_t i = 0; i < rows; ++i) {
        if (alpha[i] == 1.0f) continue;
        const VF a = hn::Set(df, alpha[i]);
        for (int64_t c = 0; c < dv_pad; c += kLanes)
          hn::Store(hn::Mul(hn::Load(df, o + i * dv_pad + c), a), df, o + i * dv_pad + c);
      }
    }
    // O (rows, Dv) += P (rows, n_keys) · V (n_keys, Dv), P(i, j) = P^T[j][i]
    TileGemm<Tuning::ValueTile, true>(rows, dv_vecs, n_keys, {s_t, 1, kBm}, values, {o, dv_pad});
  });

  // Normalize; the sink logit joins the denominator and the LSE but has no value row.
  const float sink = p.sink_logits ? p.sink_logits[h] : 0.0f;
  for (int64_t i = 0; i < rows; ++i) {
    float denominator = 0.0f, lse = -std::numeric_limits<float>::infinity();
    if (p.sink_logits) {
      const float top = std::max(m[i], sink);
      const float kept = std::exp(m[i] - top);  // 0 when no key was visible (m = -inf)
      const float total = l[i] * kept + std::exp(sink - top);
      denominator = kept > 0.0f ? total / kept : 0.0f;
      lse = top + std::log(total);
    } else if (l[i] > 0.0f) {
      denominator = l[i];
      lse = m[i] + std::log(l[i]);
    }
    const int64_t token = p.q_begin[b] + q0 + i;
    T* out_row = p.out.at<T>(b, token, h);
    if (denominator > 0.0f) StoreDivided(o + i * dv_pad, dv, denominator, out_row);
    else StoreScaled(o + i * dv_pad, dv, 0.0f, out_row);  // no visible key: 0
    if (p.lse) p.lse->at(b, h, token) = lse;
  }
}

}  // namespace

int64_t ForwardBlockQ() { return kBm; }

WorkspaceSize ForwardWorkspace(const ForwardProblem& p) { return {ForwardLayout(p).floats, 2 * kBm}; }

void ForwardTask(const ForwardProblem& p, int64_t b, int64_t h, int64_t q0, int64_t rows, const Workspace& ws) {
  switch (p.dtype) {
    case DType::f32: ForwardTaskT<float>(p, b, h, q0, rows, ws); break;
    case DType::bf16: ForwardTaskT<bf16_t>(p, b, h, q0, rows, ws); break;
    case DType::f16: ForwardTaskT<f16_t>(p, b, h, q0, rows, ws); break;
    default: break;  // refused by can_run
  }
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace omniattn::detail::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace omniattn::detail::cpu {

HWY_EXPORT(ForwardBlockQ);
HWY_EXPORT(ForwardWorkspace);
HWY_EXPORT(ForwardTask);
HWY_EXPORT(TargetName);

std::string simd_target() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

void forward(const ForwardProblem& p) {
  struct Task {
    int64_t b, h, q0, rows;
  };
  const int64_t block_q = HWY_DYNAMIC_DISPATCH(ForwardBlockQ)();
  std::vector<Task> tasks;
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.hq; ++h) {
      const size_t first = tasks.size();
      // With a block mask a task's queries stay inside one mask query block (they share its block list).
      for_each_tile(p.q_len[b], p.sparse ? p.sparse->block_q : block_q, block_q, kTileLanes,
                    [&](int64_t q0, int64_t rows) { tasks.push_back({b, h, q0, rows}); });
      // Last query blocks first: under a causal mask they see the most keys, and the dynamic schedule
      // balances best when the long tasks start early.
      std::reverse(tasks.begin() + static_cast<std::ptrdiff_t>(first), tasks.end());
    }
  parallel_tasks(static_cast<int64_t>(tasks.size()), HWY_DYNAMIC_DISPATCH(ForwardWorkspace)(p),
                 [&](int64_t t, const Workspace& ws) {
                   const Task& k = tasks[static_cast<size_t>(t)];
                   HWY_DYNAMIC_DISPATCH(ForwardTask)(p, k.b, k.h, k.q0, k.rows, ws);
                 });
}

}  // namespace omniattn::detail::cpu
#endif  // HWY_ONCE
