// Token-level sparse attention on a CSR graph (CPU): O(edges · head dim) work and O(edges) memory.
// Forward per (head, query node): logits of its edges, softmax, O = Σ P V. Backward in two deterministic
// passes: per query node (P, dS per edge, dQ), then per key node over the transposed graph (dK, dV).
// Arguments are validated through the varlen attention checks (one sequence of Nq queries and Nk keys).
// CUDA tensors go to src/cuda/graph (sparse/graph_cuda.hpp) after the batched form of the same checks.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.hpp"
#include "core/problem.hpp"
#include "core/validate.hpp"
#include "omniattn/sparse.hpp"
#include "sparse/graph_cuda.hpp"

namespace omniattn::sparse {
namespace {

using detail::from_float;
using detail::to_float;

struct Graph {
  std::vector<int32_t> row, col;  // CSR: query node -> key nodes
  std::vector<int32_t> t_row, t_edge;  // transposed: key node -> edges (indices into col), by query node
};

Graph check_graph(const TensorView& row_offsets, const TensorView& col_indices, int64_t nq, int64_t nk) {
  detail::require_device(row_offsets, "row_offsets", Device::cpu());
  detail::require_device(col_indices, "col_indices", Device::cpu());
  Graph g{detail::host_int32(row_offsets, "row_offsets"), detail::host_int32(col_indices, "col_indices"), {}, {}};
  OMNI_REQUIRE(static_cast<int64_t>(g.row.size()) == nq + 1, "row_offsets", fmt::format("{} entries (Nq + 1)", nq + 1),
          std::to_string(g.row.size()));
  OMNI_REQUIRE(g.row[0] == 0 && g.row.back() == static_cast<int64_t>(g.col.size()), "row_offsets",
          fmt::format("first entry 0 and last {} (the edge count)", g.col.size()),
          fmt::format("{} and {}", g.row[0], g.row.back()));
  for (int64_t i = 0; i < nq; ++i) {
    OMNI_REQUIRE(g.row[i + 1] >= g.row[i], "row_offsets", "non-decreasing entries", fmt::format("row {}", i));
    for (int32_t e = g.row[i]; e < g.row[i + 1]; ++e) {
      OMNI_REQUIRE(g.col[e] >= 0 && g.col[e] < nk, "col_indices", fmt::format("key nodes in [0, {})", nk),
              fmt::format("{} in row {}", g.col[e], i));
      if (e > g.row[i] && g.col[e] <= g.col[e - 1])
        OMNI_REQUIRE(false, "col_indices", "strictly increasing keys per row",
                fmt::format("{} after {} in row {}", g.col[e], g.col[e - 1], i));
    }
  }
  g.t_row.assign(static_cast<size_t>(nk + 1), 0);
  for (int32_t c : g.col) ++g.t_row[c + 1];
  for (int64_t j = 0; j < nk; ++j) g.t_row[j + 1] += g.t_row[j];
  g.t_edge.resize(g.col.size());
  std::vector<int32_t> cursor(g.t_row.begin(), g.t_row.end() - 1);
  for (size_t e = 0; e < g.col.size(); ++e) g.t_edge[cursor[g.col[e]]++] = static_cast<int32_t>(e);
  return g;
}

AttentionOptions graph_options(const TensorView& q, const TensorView& k, const AttentionOptions& o, TensorView cu_q,
                               TensorView cu_k) {
  OMNI_REQUIRE(!o.causal && o.window_left < 0 && o.window_right < 0 && o.sinks == 0 && !o.alibi_slopes && !o.sink_logits &&
              !o.cu_seqlens_q && !o.seqused_k && !o.block_mask,
          "options", "softmax_scale and softcap only (the graph is the mask)", "another option set");
  OMNI_REQUIRE(q.ndim == 3 && k.ndim == 3, "q", "[Nq, H, D] and k [Nk, Hkv, D]", detail::shape_string(q));
  AttentionOptions v = o;
  v.backend = Backend::cpu;
  v.cu_seqlens_q = cu_q;
  v.cu_seqlens_k = cu_k;
  return v;
}

template <class T>
float dot(const T* a, const T* b, int64_t n) {
  float s = 0;
  for (int64_t c = 0; c < n; ++c) s += to_float(a[c]) * to_float(b[c]);
  return s;
}

// Logits of row i's edges into `logit`; also d logit / d dot into `dl` when given. Returns the max.
template <class T>
float row_logits(const detail::Problem& p, const Graph& g, int64_t h, int64_t i, float* logit, float* dl) {
  const int64_t kvh = h / p.group();
  const T* qi = p.q.at<T>(0, i, h);
  float top = -std::numeric_limits<float>::infinity();
  for (int32_t e = g.row[i]; e < g.row[i + 1]; ++e) {
    float s = dot(qi, p.k.at<T>(0, g.col[e], kvh), p.d) * static_cast<float>(p.scale);
    float d = static_cast<float>(p.scale);
    if (p.softcap > 0) {
      const float t = std::tanh(s / static_cast<float>(p.softcap));
      s = static_cast<float>(p.softcap) * t;
      d *= 1.0f - t * t;
    }
    logit[e - g.row[i]] = s;
    if (dl) dl[e - g.row[i]] = d;
    top = std::max(top, s);
  }
  return top;
}

template <class T>
void forward_impl(const detail::ForwardProblem& p, const Graph& g) {
  const int64_t nq = p.q_len[0];
#pragma omp parallel
  {
    std::vector<float> logit, acc(static_cast<size_t>(p.dv));
#pragma omp for schedule(dynamic, 64)
    for (int64_t task = 0; task < p.hq * nq; ++task) {
      const int64_t h = task / nq, i = task % nq, kvh = h / p.group(), degree = g.row[i + 1] - g.row[i];
      logit.resize(static_cast<size_t>(degree));
      const float top = row_logits<T>(p, g, h, i, logit.data(), nullptr);
      std::fill(acc.begin(), acc.end(), 0.0f);
      float sum = 0;
      for (int64_t n = 0; n < degree; ++n) {
        const float w = std::exp(logit[n] - top);
        sum += w;
        const T* vj = p.v.at<T>(0, g.col[g.row[i] + n], kvh);
        for (int64_t c = 0; c < p.dv; ++c) acc[c] += w * to_float(vj[c]);
      }
      T* out = p.out.at<T>(0, i, h);
      for (int64_t c = 0; c < p.dv; ++c) out[c] = from_float<T>(degree ? acc[c] / sum : 0.0f);
      if (p.lse) p.lse->at(0, h, i) = degree ? top + std::log(sum) : -std::numeric_limits<float>::infinity();
    }
  }
}

template <class T>
void backward_impl(const detail::BackwardProblem& p, const Graph& g) {
  const int64_t nq = p.q_len[0], nk = p.k_len[0], edges = static_cast<int64_t>(g.col.size());
  std::vector<float> prob(static_cast<size_t>(p.hq * edges)), dscore(prob.size());  // per (head, edge)
  // Pass 1, per (head, query node): P and dS of its edges, dQ.
#pragma omp parallel
  {
    std::vector<float> logit, dl, dp, dq(static_cast<size_t>(p.d));
#pragma omp for schedule(dynamic, 64)
    for (int64_t task = 0; task < p.hq * nq; ++task) {
      const int64_t h = task / nq, i = task % nq, kvh = h / p.group(), degree = g.row[i + 1] - g.row[i];
      logit.resize(static_cast<size_t>(degree));
      dl.resize(logit.size());
      dp.resize(logit.size());
      row_logits<T>(p, g, h, i, logit.data(), dl.data());
      const float lse = p.lse.at(0, h, i);
      const T* doi = p.dout.at<T>(0, i, h);
      float delta = 0;
      for (int64_t n = 0; n < degree; ++n) {
        const int64_t e = g.row[i] + n;
        const float pe = std::isinf(lse) ? 0.0f : std::exp(logit[n] - lse);
        prob[static_cast<size_t>(h * edges + e)] = pe;
        dp[n] = dot(doi, p.v.at<T>(0, g.col[e], kvh), p.dv);
        delta += pe * dp[n];
      }
      std::fill(dq.begin(), dq.end(), 0.0f);
      for (int64_t n = 0; n < degree; ++n) {
        const int64_t e = g.row[i] + n;
        const float ds = prob[static_cast<size_t>(h * edges + e)] * (dp[n] - delta) * dl[n];  // d loss / d (q·k)
        dscore[static_cast<size_t>(h * edges + e)] = ds;
        const T* kj = p.k.at<T>(0, g.col[e], kvh);
        for (int64_t c = 0; c < p.d; ++c) dq[c] += ds * to_float(kj[c]);
      }
      T* out = p.grad_q.at<T>(0, i, h);
      for (int64_t c = 0; c < p.d; ++c) out[c] = from_float<T>(dq[c]);
    }
  }
  // Pass 2, per (KV head, key node) over the transposed graph: dV = Σ P dO, dK = Σ dS Q (group heads summed).
#pragma omp parallel
  {
    std::vector<float> dk(static_cast<size_t>(p.d)), dv(static_cast<size_t>(p.dv));
#pragma omp for schedule(dynamic, 64)
    for (int64_t task = 0; task < p.hkv * nk; ++task) {
      const int64_t kvh = task / nk, j = task % nk;
      std::fill(dk.begin(), dk.end(), 0.0f);
      std::fill(dv.begin(), dv.end(), 0.0f);
      for (int64_t h = kvh * p.group(); h < (kvh + 1) * p.group(); ++h)
        for (int32_t t = g.t_row[j]; t < g.t_row[j + 1]; ++t) {
          const int32_t e = g.t_edge[t];
          const int64_t i = std::upper_bound(g.row.begin(), g.row.end(), e) - g.row.begin() - 1;  // e's query node
          const float pe = prob[static_cast<size_t>(h * edges + e)], ds = dscore[static_cast<size_t>(h * edges + e)];
          const T* doi = p.dout.at<T>(0, i, h);
          const T* qi = p.q.at<T>(0, i, h);
          for (int64_t c = 0; c < p.dv; ++c) dv[c] += pe * to_float(doi[c]);
          for (int64_t c = 0; c < p.d; ++c) dk[c] += ds * to_float(qi[c]);
        }
      T* gk = p.grad_k.at<T>(0, j, kvh);
      T* gv = p.grad_v.at<T>(0, j, kvh);
      for (int64_t c = 0; c < p.d; ++c) gk[c] = from_float<T>(dk[c]);
      for (int64_t c = 0; c < p.dv; ++c) gv[c] = from_float<T>(dv[c]);
    }
  }
}

#if OMNIATTN_WITH_CUDA
// CUDA calls: [N, H, D] as [1, N, H, D] and lse [Hq, Nq] as [1, Hq, Nq] over the same memory, for the batched form
// of the attention checks (the varlen form wants cu_seqlens on the inputs' device).
TensorView batch_of_one(const TensorView& t) {
  if (t.ndim < 1 || t.ndim >= TensorView::kMaxDims) return t;
  TensorView b = t;
  b.ndim = t.ndim + 1;
  for (int d = t.ndim; d > 0; --d) {
    b.shape[d] = t.shape[d - 1];
    b.stride[d] = t.stride[d - 1];
  }
  b.shape[0] = 1;
  b.stride[0] = 0;
  return b;
}

// The graph layout's ranks, checked before batch_of_one so that errors show the caller's shapes.
void require_graph_ranks(std::initializer_list<std::pair<const TensorView*, const char*>> tensors, int ndim) {
  for (auto [t, name] : tensors) detail::require_ndim(*t, name, ndim);
}

AttentionOptions cuda_options(const TensorView& q, const TensorView& k, const AttentionOptions& options) {
  int32_t cu[2] = {0, 0};
  AttentionOptions o = graph_options(q, k, options, TensorView::contiguous(cu, DType::i32, {2}),
                                     TensorView::contiguous(cu, DType::i32, {2}));
  o.cu_seqlens_q.reset();
  o.cu_seqlens_k.reset();
  o.backend = Backend::automatic;
  return o;
}
#endif

template <class Fn>
void by_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::f32: fn(float{}); break;
    case DType::bf16: fn(detail::bf16_t{}); break;
    case DType::f16: fn(detail::f16_t{}); break;
    default: throw Error("q", "dtype f32, bf16 or f16 (graph attention runs on the CPU in f32)", to_string(t));
  }
}

}  // namespace

void graph_attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                             const TensorView& row_offsets, const TensorView& col_indices,
                             const ForwardOutputs& outputs, const AttentionOptions& options) {
  if (q.device.is_cuda()) {
#if OMNIATTN_WITH_CUDA
    const AttentionOptions o = cuda_options(q, k, options);
    require_graph_ranks({{&v, "v"}, {&outputs.out, "outputs.out"}}, 3);
    if (outputs.lse) require_graph_ranks({{&*outputs.lse, "outputs.lse"}}, 2);
    const ForwardOutputs batched{batch_of_one(outputs.out),
                                 outputs.lse ? std::optional(batch_of_one(*outputs.lse)) : std::nullopt};
    const auto p = detail::make_forward_problem(batch_of_one(q), batch_of_one(k), batch_of_one(v), batched, o);
    detail::graph_cuda::forward(p, {row_offsets, col_indices, q.shape[0], k.shape[0]});
    return;
#endif
  }
  int32_t cu_q[2] = {0, static_cast<int32_t>(q.shape[0])}, cu_k[2] = {0, static_cast<int32_t>(k.shape[0])};
  const AttentionOptions o = graph_options(q, k, options, TensorView::contiguous(cu_q, DType::i32, {2}),
                                           TensorView::contiguous(cu_k, DType::i32, {2}));
  OMNI_REQUIRE(q.device.is_cpu(), "q", "CPU tensors", to_string(q.device));
  const auto p = detail::make_forward_problem(q, k, v, outputs, o);
  const Graph g = check_graph(row_offsets, col_indices, q.shape[0], k.shape[0]);
  by_dtype(p.dtype, [&](auto t) { forward_impl<decltype(t)>(p, g); });
}

void graph_attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                              const TensorView& row_offsets, const TensorView& col_indices, const TensorView& out,
                              const TensorView& lse, const TensorView& dout, const BackwardOutputs& grads,
                              const AttentionOptions& options) {
  if (q.device.is_cuda()) {
#if OMNIATTN_WITH_CUDA
    const AttentionOptions o = cuda_options(q, k, options);
    require_graph_ranks({{&v, "v"}, {&out, "out"}, {&dout, "dout"}, {&grads.dq, "grads.dq"}, {&grads.dk, "grads.dk"},
                         {&grads.dv, "grads.dv"}},
                        3);
    require_graph_ranks({{&lse, "lse"}}, 2);
    const BackwardOutputs batched{batch_of_one(grads.dq), batch_of_one(grads.dk), batch_of_one(grads.dv),
                                  grads.dsink_logits};
    const auto p = detail::make_backward_problem(batch_of_one(q), batch_of_one(k), batch_of_one(v), batch_of_one(out),
                                                 batch_of_one(lse), batch_of_one(dout), batched, o);
    detail::graph_cuda::backward(p, {row_offsets, col_indices, q.shape[0], k.shape[0]});
    return;
#endif
  }
  int32_t cu_q[2] = {0, static_cast<int32_t>(q.shape[0])}, cu_k[2] = {0, static_cast<int32_t>(k.shape[0])};
  const AttentionOptions o = graph_options(q, k, options, TensorView::contiguous(cu_q, DType::i32, {2}),
                                           TensorView::contiguous(cu_k, DType::i32, {2}));
  OMNI_REQUIRE(q.device.is_cpu(), "q", "CPU tensors", to_string(q.device));
  const auto p = detail::make_backward_problem(q, k, v, out, lse, dout, grads, o);
  const Graph g = check_graph(row_offsets, col_indices, q.shape[0], k.shape[0]);
  by_dtype(p.dtype, [&](auto t) { backward_impl<decltype(t)>(p, g); });
}

}  // namespace omniattn::sparse
