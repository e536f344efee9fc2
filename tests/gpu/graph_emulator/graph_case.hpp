#pragma once
// A graph-attention test case shared by the emulator and GPU tests: a random CSR graph (empty rows, optionally a
// hub row listing every key node), fresh random inputs, and the checks against the float64 reference run with the
// graph as a dense element mask, under FlashAttention's tolerance rule (as tests/test_sparse_graph.cpp does).
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "omniattn/sparse.hpp"
#include "reference/reference.hpp"
#include "support/test_util.hpp"

namespace omniattn::testing {

struct GraphShape {
  int64_t nq = 37, nk = 29, hq = 4, hkv = 2, d = 64, dv = 64, max_degree = 12;
  DType dtype = DType::bf16;
  double softcap = 0.0;
  std::optional<double> scale;
  int64_t hub_row = -1;  // >= 0: this query node's row lists every key node
  int64_t hub_key = -1;  // >= 0: every query node with an edge has one to this key node
};

inline std::string describe(const GraphShape& s) {
  std::ostringstream o;
  o << to_string(s.dtype) << " Nq " << s.nq << " Nk " << s.nk << " heads " << s.hq << "/" << s.hkv << " D " << s.d
    << " Dv " << s.dv << " max degree " << s.max_degree << " softcap " << s.softcap << " hubs " << s.hub_row << "/" << s.hub_key;
  return o.str();
}

inline HostTensor i32_tensor(const std::vector<int64_t>& values) {
  HostTensor t(DType::i32, {static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.set(static_cast<int64_t>(i), static_cast<double>(values[i]));
  return t;
}

/// CSR: query node i -> key nodes col[row[i] .. row[i + 1]), strictly increasing.
struct CsrGraph {
  std::vector<int64_t> row{0}, col;
  HostTensor row_t, col_t;

  /// Degrees uniform in [0, max_degree]; nodes 3, 10, 17, ... have none; `hub` (if >= 0) has every key; every row
  /// with an edge also has `hub_key` (if >= 0).
  static CsrGraph random(int64_t nq, int64_t nk, int64_t max_degree, int64_t hub = -1, int64_t hub_key = -1) {
    CsrGraph g;
    std::uniform_int_distribution<int64_t> degree(0, max_degree), node(0, std::max<int64_t>(nk - 1, 0));
    for (int64_t i = 0; i < nq; ++i) {
      std::set<int64_t> keys;
      const int64_t n = i == hub ? nk : i % 7 == 3 || nk == 0 ? 0 : std::min(degree(rng()), nk);
      while (static_cast<int64_t>(keys.size()) < n) keys.insert(node(rng()));
      if (hub_key >= 0 && !keys.empty()) keys.insert(hub_key);
      g.col.insert(g.col.end(), keys.begin(), keys.end());
      g.row.push_back(static_cast<int64_t>(g.col.size()));
    }
    g.row_t = i32_tensor(g.row);
    g.col_t = i32_tensor(g.col);
    return g;
  }
  int64_t nnz() const { return static_cast<int64_t>(col.size()); }
  bool edge(int64_t i, int64_t j) const {
    return std::binary_search(col.begin() + row[static_cast<size_t>(i)], col.begin() + row[static_cast<size_t>(i) + 1],
                              j);
  }
};

/// [N, H, D] as [1, N, H, D] over the same memory.
inline TensorView batched(const TensorView& t) {
  return TensorView::contiguous(t.data, t.dtype, {1, t.shape[0], t.shape[1], t.shape[2]}, t.device);
}

struct GraphCase {
  GraphShape shape;
  CsrGraph graph;
  HostTensor q, k, v, dout;

  explicit GraphCase(const GraphShape& s)
      : shape(s),
        graph(CsrGraph::random(s.nq, s.nk, s.max_degree, s.hub_row, s.hub_key)),
        q(random_normal(s.dtype, {s.nq, s.hq, s.d})),
        k(random_normal(s.dtype, {s.nk, s.hkv, s.d})),
        v(random_normal(s.dtype, {s.nk, s.hkv, s.dv})),
        dout(random_normal(s.dtype, {s.nq, s.hq, s.dv})) {}

  AttentionOptions options() const {
    AttentionOptions o;
    o.softcap = shape.softcap;
    o.softmax_scale = shape.scale;
    return o;
  }
  HostTensor out_like() const {
    HostTensor t(shape.dtype, {shape.nq, shape.hq, shape.dv});
    poison(t);
    return t;
  }
  HostTensor lse_like() const {
    HostTensor t(DType::f32, {shape.hq, shape.nq});
    poison(t);
    return t;
  }

  /// Every block partial: the reference evaluates the element rule (the graph) on every pair.
  BlockMask all_partial() const {
    const int64_t blocks = ((shape.nq + 63) / 64) * ((shape.nk + 63) / 64);
    return BlockMask::from_block_map({1, 1, shape.nq, shape.nk, 64, 64},
                                     std::vector<BlockMask::Block>(static_cast<size_t>(blocks), BlockMask::Block::partial));
  }
  /// The reference's options over `mask` (all_partial(), alive while they are used).
  AttentionOptions reference_options(const BlockMask& mask) const {
    AttentionOptions o = options();
    o.block_mask = mask.view();
    o.block_mask->host_element_mask = [this](int64_t, int64_t, int64_t i, int64_t j) { return graph.edge(i, j); };
    o.backend = Backend::reference;
    return o;
  }

  ::testing::AssertionResult check_forward(const HostTensor& out, const HostTensor& lse) const {
    const BlockMask mask = all_partial();
    const AttentionOptions ref = reference_options(mask);
    const GraphShape& s = shape;
    HostTensor out64(DType::f64, {s.nq, s.hq, s.dv}), out_n(s.dtype, {s.nq, s.hq, s.dv}),
        lse64(DType::f32, {1, s.hq, s.nq}), lse_n(DType::f32, {1, s.hq, s.nq});
    const HostTensor q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
    attention_forward(batched(q64), batched(k64), batched(v64), {batched(out64), lse64.view()}, ref);
    detail::reference::forward_lowp(detail::make_forward_problem(batched(q), batched(k), batched(v),
                                                                 {batched(out_n), lse_n.view()}, ref));
    if (auto r = within_tolerance(out, out_n, out64, s.dtype, "out"); !r) return r;
    if (auto r = within_tolerance(lse, lse_n, lse64, DType::f32, "lse"); !r) return r;
    for (int64_t i = 0; i < s.nq; ++i)
      if (graph.row[static_cast<size_t>(i)] == graph.row[static_cast<size_t>(i) + 1])
        for (int64_t h = 0; h < s.hq; ++h)
          if (lse.get(h * s.nq + i) != -INFINITY)
            return ::testing::AssertionFailure() << "node " << i << " has no edge: LSE must be -inf, is "
                                                 << lse.get(h * s.nq + i);
    return ::testing::AssertionSuccess();
  }

  /// Gradients of a backward run on (our) `out` and `lse`.
  ::testing::AssertionResult check_backward(const HostTensor& out, const HostTensor& lse, const HostTensor& dq,
                                            const HostTensor& dk, const HostTensor& dv) const {
    (void)lse;
    const BlockMask mask = all_partial();
    const AttentionOptions ref = reference_options(mask);
    const GraphShape& s = shape;
    const HostTensor q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
    HostTensor out64(DType::f64, {s.nq, s.hq, s.dv}), lse64(DType::f32, {1, s.hq, s.nq});
    attention_forward(batched(q64), batched(k64), batched(v64), {batched(out64), lse64.view()}, ref);
    HostTensor dq64 = q64, dk64 = k64, dv64 = v64, dq_n = q, dk_n = k, dv_n = v;
    const HostTensor out_d = out.to(DType::f64), dout64 = dout.to(DType::f64);
    attention_backward(batched(q64), batched(k64), batched(v64), batched(out_d), lse64, batched(dout64),
                       {batched(dq64), batched(dk64), batched(dv64), std::nullopt}, ref);
    detail::reference::backward_lowp(detail::make_backward_problem(
        batched(q), batched(k), batched(v), batched(out), lse64, batched(dout),
        {batched(dq_n), batched(dk_n), batched(dv_n), std::nullopt}, ref));
    if (auto r = within_tolerance(dq, dq_n, dq64, s.dtype, "dq"); !r) return r;
    if (auto r = within_tolerance(dk, dk_n, dk64, s.dtype, "dk"); !r) return r;
    return within_tolerance(dv, dv_n, dv64, s.dtype, "dv");
  }
};

}  // namespace omniattn::testing
