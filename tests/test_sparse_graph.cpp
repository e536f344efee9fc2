// Token-level attention on a CSR graph against the float64 reference with the graph as a dense element
// mask (FlashAttention's tolerance rule), validation errors, and a million-edge graph.
#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "core/problem.hpp"
#include "omniattn/sparse.hpp"
#include "reference/reference.hpp"
#include "support/test_util.hpp"

namespace omniattn::testing {
namespace {

struct RandomGraph {
  std::vector<int64_t> row{0}, col;
  HostTensor row_t, col_t;
  RandomGraph(int64_t nq, int64_t nk, int64_t max_degree) {
    std::uniform_int_distribution<int64_t> degree(0, max_degree), node(0, nk - 1);
    for (int64_t i = 0; i < nq; ++i) {
      std::set<int64_t> keys;
      const int64_t n = i % 7 == 3 ? 0 : degree(rng());  // some nodes without edges
      while (static_cast<int64_t>(keys.size()) < std::min(n, nk)) keys.insert(node(rng()));
      col.insert(col.end(), keys.begin(), keys.end());
      row.push_back(static_cast<int64_t>(col.size()));
    }
    row_t = to_i32(row);
    col_t = to_i32(col);
  }
  static HostTensor to_i32(const std::vector<int64_t>& v) {
    HostTensor t(DType::i32, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), double(v[i]));
    return t;
  }
  bool edge(int64_t i, int64_t j) const {
    return std::binary_search(col.begin() + row[static_cast<size_t>(i)], col.begin() + row[static_cast<size_t>(i) + 1], j);
  }
};

// [N, H, D] as [1, N, H, D] over the same memory.
TensorView batched(const TensorView& t) {
  TensorView b = TensorView::contiguous(t.data, t.dtype, {1, t.shape[0], t.shape[1], t.shape[2]});
  return b;
}

TEST(GraphAttention, MatchesTheReferenceWithTheGraphAsMask) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    const int64_t nq = 150, nk = 97, hq = 4, hkv = 2, d = 16, dv = 24;
    const RandomGraph g(nq, nk, 12);
    HostTensor q = random_normal(dtype, {nq, hq, d}), k = random_normal(dtype, {nk, hkv, d}),
               v = random_normal(dtype, {nk, hkv, dv});
    HostTensor out(dtype, {nq, hq, dv}), lse(DType::f32, {hq, nq});
    poison(out), poison(lse);
    AttentionOptions o;
    o.softcap = dtype == DType::f32 ? 0.0 : 4.0;
    sparse::graph_attention_forward(q, k, v, g.row_t, g.col_t, {out, lse.view()}, o);

    // Oracle and same-precision naive: dense attention, every block partial, the graph as the element rule.
    const BlockMask all = BlockMask::from_block_map({1, 1, nq, nk, 64, 64}, std::vector<BlockMask::Block>(6, BlockMask::Block::partial));
    AttentionOptions ref = o;
    ref.block_mask = all.view();
    ref.block_mask->host_element_mask = [&](int64_t, int64_t, int64_t i, int64_t j) { return g.edge(i, j); };
    ref.backend = Backend::reference;
    HostTensor out64(DType::f64, {nq, hq, dv}), out_n(dtype, {nq, hq, dv}), lse64(DType::f32, {1, hq, nq}),
        lse_n(DType::f32, {1, hq, nq});
    const HostTensor q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
    attention_forward(batched(q64), batched(k64), batched(v64), {batched(out64), lse64.view()}, ref);
    detail::reference::forward_lowp(
        detail::make_forward_problem(batched(q), batched(k), batched(v), {batched(out_n), lse_n.view()}, ref));
    EXPECT_TRUE(within_tolerance(out, out_n, out64, dtype, "out"));
    EXPECT_TRUE(within_tolerance(lse, lse_n, lse64, DType::f32, "lse"));
    for (int64_t h = 0; h < hq; ++h) EXPECT_EQ(lse.get(h * nq + 3), -INFINITY);  // node 3 has no edge

    HostTensor dout = random_normal(dtype, {nq, hq, dv});
    HostTensor dq = q, dk = k, dv_ = v, dq_n = q, dk_n = k, dv_n = v, dq64 = q64, dk64 = k64, dv64 = v64;
    for (HostTensor* t : {&dq, &dk, &dv_, &dq_n, &dk_n, &dv_n, &dq64, &dk64, &dv64}) poison(*t);
    sparse::graph_attention_backward(q, k, v, g.row_t, g.col_t, out, lse, dout, {dq, dk, dv_, std::nullopt}, o);
    const HostTensor out_d = out.to(DType::f64), dout64 = dout.to(DType::f64);
    attention_backward(batched(q64), batched(k64), batched(v64), batched(out_d), lse64, batched(dout64),
                       {batched(dq64), batched(dk64), batched(dv64), std::nullopt}, ref);
    detail::reference::backward_lowp(detail::make_backward_problem(
        batched(q), batched(k), batched(v), batched(out), lse64, batched(dout),
        {batched(dq_n), batched(dk_n), batched(dv_n), std::nullopt}, ref));
    EXPECT_TRUE(within_tolerance(dq, dq_n, dq64, dtype, "dq"));
    EXPECT_TRUE(within_tolerance(dk, dk_n, dk64, dtype, "dk"));
    EXPECT_TRUE(within_tolerance(dv_, dv_n, dv64, dtype, "dv"));
  }
}

TEST(GraphAttention, RefusesBadGraphs) {
  HostTensor q = random_normal(DType::f32, {4, 1, 8}), k = random_normal(DType::f32, {3, 1, 8}),
             v = random_normal(DType::f32, {3, 1, 8}), out(DType::f32, {4, 1, 8});
  auto expect = [&](std::vector<int64_t> row, std::vector<int64_t> col, const std::string& argument) {
    try {
      sparse::graph_attention_forward(q, k, v, RandomGraph::to_i32(row), RandomGraph::to_i32(col), {out, std::nullopt});
      ADD_FAILURE() << "no error; expected one about " << argument;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
    }
  };
  expect({0, 1, 2, 3}, {0, 1, 2}, "row_offsets");            // Nq + 1 = 5 entries needed
  expect({0, 1, 2, 3, 4}, {0, 1, 2}, "row_offsets");         // last entry != edge count
  expect({0, 1, 2, 3, 3}, {0, 1, 3}, "col_indices");         // key 3 out of range
  expect({0, 2, 2, 3, 3}, {1, 1, 2}, "col_indices");         // duplicate key
  AttentionOptions causal;
  causal.causal = true;
  EXPECT_THROW(sparse::graph_attention_forward(q, k, v, RandomGraph::to_i32({0, 0, 0, 0, 0}), RandomGraph::to_i32({}),
                                               {out, std::nullopt}, causal),
               Error);
}

TEST(GraphAttention, MillionEdges) {
  // 40k nodes, 25 edges each; checks sampled rows of O and dV in float64 by hand.
  const int64_t n = 40000, degree = 25, d = 8;
  std::vector<int64_t> row{0}, col;
  std::uniform_int_distribution<int64_t> node(0, n - 1);
  for (int64_t i = 0; i < n; ++i) {
    std::set<int64_t> keys;
    while (static_cast<int64_t>(keys.size()) < degree) keys.insert(node(rng()));
    col.insert(col.end(), keys.begin(), keys.end());
    row.push_back(static_cast<int64_t>(col.size()));
  }
  const HostTensor row_t = RandomGraph::to_i32(row), col_t = RandomGraph::to_i32(col);
  HostTensor q = random_normal(DType::f32, {n, 1, d}), k = random_normal(DType::f32, {n, 1, d}),
             v = random_normal(DType::f32, {n, 1, d}), out(DType::f32, {n, 1, d}), lse(DType::f32, {1, n});
  sparse::graph_attention_forward(q, k, v, row_t, col_t, {out, lse.view()});
  const double scale = 1.0 / std::sqrt(double(d));
  for (int64_t i : {int64_t{0}, n / 3, n - 1}) {
    std::vector<double> logit;
    double top = -INFINITY;
    for (int64_t e = row[i]; e < row[i + 1]; ++e) {
      double s = 0;
      for (int64_t c = 0; c < d; ++c) s += q.get(i * d + c) * k.get(col[e] * d + c);
      logit.push_back(s * scale);
      top = std::max(top, s * scale);
    }
    double sum = 0;
    for (double l : logit) sum += std::exp(l - top);
    for (int64_t c = 0; c < d; ++c) {
      double o = 0;
      for (int64_t e = row[i]; e < row[i + 1]; ++e) o += std::exp(logit[e - row[i]] - top) / sum * v.get(col[e] * d + c);
      EXPECT_NEAR(out.get(i * d + c), o, 1e-5);
    }
    EXPECT_NEAR(lse.get(i), top + std::log(sum), 1e-5);
  }
  HostTensor dout = random_normal(DType::f32, {n, 1, d}), dq(DType::f32, {n, 1, d}), dk(DType::f32, {n, 1, d}),
             dv(DType::f32, {n, 1, d});
  sparse::graph_attention_backward(q, k, v, row_t, col_t, out, lse, dout, {dq, dk, dv, std::nullopt});
  // dV_j = Σ_{edges i->j} P_ij dO_i: recomputed for one key node.
  const int64_t j = col[7];
  std::vector<double> dv_j(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = row[i]; e < row[i + 1]; ++e)
      if (col[e] == j) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += q.get(i * d + c) * k.get(j * d + c);
        const double p = std::exp(s * scale - lse.get(i));
        for (int64_t c = 0; c < d; ++c) dv_j[static_cast<size_t>(c)] += p * dout.get(i * d + c);
      }
  for (int64_t c = 0; c < d; ++c) EXPECT_NEAR(dv.get(j * d + c), dv_j[static_cast<size_t>(c)], 1e-4);
}

}  // namespace
}  // namespace omniattn::testing
