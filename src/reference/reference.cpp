// Naive attention, one query row at a time, for every option. One code path serves two purposes:
//   Real = double, no rounding           -> the float64 oracle;
//   Real = float, round to the input dtype -> an unfused same-precision implementation, whose error
//                                            against the oracle sets the tests' tolerance.
#include "reference/reference.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.hpp"

namespace omniattn::detail::reference {
namespace {

// Element c of (b, token, h) of a tensor of dtype t, as double.
double load(const Operand& o, DType t, int64_t b, int64_t token, int64_t h, int64_t c) {
  return load_as_double(o.data, t, b * o.batch + token * o.token + h * o.head + c);
}
void store(const Operand& o, DType t, int64_t b, int64_t token, int64_t h, int64_t c, double x) {
  store_from_double(o.data, t, b * o.batch + token * o.token + h * o.head + c, x);
}

// Rounding of intermediate tensors: none for the oracle, to the input dtype for the naive low-precision run.
struct Round {
  DType dtype;
  bool enabled;
  template <class Real> Real operator()(Real x) const { return enabled ? Real(round_to(dtype, x)) : x; }
};

// Softmax of one query row over its visible keys (and the sink logit): probabilities, LSE, and the
// pre-ALiBi capped logits that backward needs for the softcap derivative.
template <class Real>
struct RowSoftmax {
  std::vector<int64_t> keys;    // visible key indices
  std::vector<Real> prob;       // P_ij for each visible key
  std::vector<Real> capped;     // softcap(scale * q.k) before ALiBi
  Real lse = -std::numeric_limits<Real>::infinity();
  Real sink_prob = 0;           // exp(sink - lse)
};

template <class Real>
RowSoftmax<Real> row_softmax(const Problem& p, int64_t b, int64_t h, int64_t i, const Round& rnd) {
  const SequenceMask mask = p.mask(b);
  const ScoreMod<Real> mod = p.score_mod<Real>(b, h);
  const ScoreMod<Real> no_alibi{mod.scale, mod.softcap, Real(0)};
  const int64_t kvh = h / p.group(), qt = p.q_begin[b] + i, diag = mask.diag(i);
  RowSoftmax<Real> row;
  std::vector<Real> logit;
  for (int64_t j = 0; j < mask.sk; ++j) {
    if (!mask.visible(i, j)) continue;
    if (p.sparse && !p.sparse->visible(b, h, i, j, mask.sq, mask.sk)) continue;  // block-sparse rule, per element
    Real dot = 0;
    for (int64_t c = 0; c < p.d; ++c)
      dot += Real(load(p.q, p.dtype, b, qt, h, c)) * Real(load(p.k, p.dtype, b, p.k_begin[b] + j, kvh, c));
    dot = rnd(dot);
    const Real cap = rnd(no_alibi.logit(dot, diag, j));
    row.keys.push_back(j);
    row.capped.push_back(cap);
    logit.push_back(rnd(cap + (mod.logit(dot, diag, j) - no_alibi.logit(dot, diag, j))));
  }
  const bool has_sink = p.sink_logits != nullptr;
  const Real sink = has_sink ? Real(p.sink_logits[h]) : Real(0);
  Real max = has_sink ? sink : -std::numeric_limits<Real>::infinity();
  for (Real l : logit) max = std::max(max, l);
  if (logit.empty() && !has_sink) return row;  // no visible key: out 0, lse -inf
  Real sum = has_sink ? std::exp(sink - max) : Real(0);
  for (Real l : logit) sum += std::exp(l - max);
  row.lse = max + std::log(sum);
  for (Real l : logit) row.prob.push_back(rnd(std::exp(l - row.lse)));
  if (has_sink) row.sink_prob = std::exp(sink - row.lse);
  return row;
}

template <class Real>
void forward_impl(const ForwardProblem& p, const Round& rnd) {
  const int64_t tasks = p.batch * p.hq;
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = task / p.hq, h = task % p.hq, kvh = h / p.group();
    for (int64_t i = 0; i < p.q_len[b]; ++i) {
      const RowSoftmax<Real> row = row_softmax<Real>(p, b, h, i, rnd);
      const int64_t qt = p.q_begin[b] + i;
      for (int64_t c = 0; c < p.dv; ++c) {
        Real acc = 0;
        for (size_t n = 0; n < row.keys.size(); ++n)
          acc += row.prob[n] * Real(load(p.v, p.dtype, b, p.k_begin[b] + row.keys[n], kvh, c));
        store(p.out, p.dtype, b, qt, h, c, double(acc));
      }
      if (p.lse) p.lse->at(b, h, qt) = static_cast<float>(row.lse);
    }
  }
}

// Exact gradients, recomputed from Q, K, V (the given O and LSE are not trusted).
template <class Real>
void backward_impl(const BackwardProblem& p, const Round& rnd) {
  const int64_t tasks = p.batch * p.hkv;
  // d(sink) per (task, head of its group), summed in a fixed order afterwards (deterministic).
  std::vector<double> dsink_parts(static_cast<size_t>(tasks * p.group()), 0.0);
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = task / p.hkv, kvh = task % p.hkv;
    const int64_t sk = p.k_len[b], sq = p.q_len[b];
    std::vector<Real> dk(static_cast<size_t>(sk * p.d), 0), dv(static_cast<size_t>(sk * p.dv), 0);
    double* dsink_local = &dsink_parts[static_cast<size_t>(task * p.group())];
    for (int64_t g = 0; g < p.group(); ++g) {
      const int64_t h = kvh * p.group() + g;
      const ScoreMod<Real> mod = p.score_mod<Real>(b, h);
      for (int64_t i = 0; i < sq; ++i) {
        const RowSoftmax<Real> row = row_softmax<Real>(p, b, h, i, rnd);
        const int64_t qt = p.q_begin[b] + i;
        const size_t n_keys = row.keys.size();
        // dP_ij = dO_i . V_j ; D_i = sum_j P_ij dP_ij
        std::vector<Real> dp(n_keys);
        Real d_i = 0;
        for (size_t n = 0; n < n_keys; ++n) {
          Real acc = 0;
          for (int64_t c = 0; c < p.dv; ++c)
            acc += Real(load(p.dout, p.dtype, b, qt, h, c)) *
                   Real(load(p.v, p.dtype, b, p.k_begin[b] + row.keys[n], kvh, c));
          dp[n] = rnd(acc);
          d_i += row.prob[n] * dp[n];
        }
        dsink_local[g] -= double(row.sink_prob * d_i);
        std::vector<Real> dq(static_cast<size_t>(p.d), 0);
        for (size_t n = 0; n < n_keys; ++n) {
          const int64_t j = row.keys[n], kt = p.k_begin[b] + j;
          for (int64_t c = 0; c < p.dv; ++c)
            dv[j * p.dv + c] += row.prob[n] * Real(load(p.dout, p.dtype, b, qt, h, c));
          const Real ddot = rnd(rnd(row.prob[n] * (dp[n] - d_i)) * mod.dlogit_ddot(row.capped[n]));
          for (int64_t c = 0; c < p.d; ++c) {
            dq[c] += ddot * Real(load(p.k, p.dtype, b, kt, kvh, c));
            dk[j * p.d + c] += ddot * Real(load(p.q, p.dtype, b, qt, h, c));
          }
        }
        for (int64_t c = 0; c < p.d; ++c) store(p.grad_q, p.dtype, b, qt, h, c, double(rnd(dq[c])));
      }
    }
    // Keys past seqused_k (j >= sk) influence nothing: their gradient is 0.
    for (int64_t j = 0; j < p.k_stored[b]; ++j) {
      const int64_t kt = p.k_begin[b] + j;
      const bool used = j < sk;
      for (int64_t c = 0; c < p.d; ++c)
        store(p.grad_k, p.dtype, b, kt, kvh, c, used ? double(rnd(dk[j * p.d + c])) : 0.0);
      for (int64_t c = 0; c < p.dv; ++c)
        store(p.grad_v, p.dtype, b, kt, kvh, c, used ? double(rnd(dv[j * p.dv + c])) : 0.0);
    }
  }
  if (p.dsink_logits) {
    for (int64_t h = 0; h < p.hq; ++h) {
      double sum = 0;
      for (int64_t b = 0; b < p.batch; ++b) sum += dsink_parts[static_cast<size_t>((b * p.hkv + h / p.group()) * p.group() + h % p.group())];
      p.dsink_logits[h] = static_cast<float>(sum);
    }
  }
}

}  // namespace

void forward(const ForwardProblem& p) { forward_impl<double>(p, Round{p.dtype, false}); }
void backward(const BackwardProblem& p) { backward_impl<double>(p, Round{p.dtype, false}); }
void forward_lowp(const ForwardProblem& p) { forward_impl<float>(p, Round{p.dtype, p.dtype != DType::f64}); }
void backward_lowp(const BackwardProblem& p) { backward_impl<float>(p, Round{p.dtype, p.dtype != DType::f64}); }

}  // namespace omniattn::detail::reference
