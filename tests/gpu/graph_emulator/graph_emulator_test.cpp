// The CUDA graph-attention kernels run on the CPU under the emulator (src/cuda/common/emulation.hpp), against the
// float64 reference with the graph as element mask: dtypes, head dims (every lane geometry), GQA ratios, softcap,
// empty rows, a hub row, a key node every query sees; the check kernels against the CPU path's errors.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>

#include "cuda/graph/graph_config.hpp"
#include "gpu/graph_emulator/graph_case.hpp"
#include "gpu/graph_emulator/graph_emulated.hpp"

namespace omniattn::testing {
namespace {

using detail::cuda::graph::DeviceGraph;

DeviceGraph device_graph(const GraphCase& c) {
  return {c.graph.row_t.view().ptr<const int32_t>(), c.graph.col_t.view().ptr<const int32_t>(), c.shape.nq,
          c.shape.nk, c.graph.nnz()};
}

// Forward and backward of a case under the emulator, checked against the reference; lists longer than `split` entries
// split into items (the library splits at kSplitEntries; smaller values split small graphs' rows).
void run_case(const GraphShape& s, int split = detail::cuda::graph::kSplitEntries) {
  SCOPED_TRACE(describe(s) + " split " + std::to_string(split));
  const GraphCase c(s);
  const DeviceGraph g = device_graph(c);
  std::vector<int32_t> starts;
  const auto record = detail::cuda::graph::emulate_check(g, starts);
  ASSERT_EQ(record.bad_row, 0xffffffffu);
  ASSERT_EQ(record.bad_edge, 0xffffffffu);
  ASSERT_EQ(record.first, 0);
  ASSERT_EQ(record.last, c.graph.nnz());

  HostTensor out = c.out_like(), lse = c.lse_like();
  const TensorView lse3 = TensorView::contiguous(lse.view().data, DType::f32, {1, s.hq, s.nq});
  AttentionOptions o = c.options();
  const auto fp = detail::make_forward_problem(batched(c.q), batched(c.k), batched(c.v), {batched(out), lse3}, o);
  detail::cuda::graph::emulate_forward(fp, g, split);
  EXPECT_TRUE(c.check_forward(out, lse));

  HostTensor dq = c.q, dk = c.k, dv = c.v;
  for (HostTensor* t : {&dq, &dk, &dv}) poison(*t);
  const auto bp = detail::make_backward_problem(batched(c.q), batched(c.k), batched(c.v), batched(out), lse3,
                                                batched(c.dout), {batched(dq), batched(dk), batched(dv), std::nullopt},
                                                o);
  detail::cuda::graph::emulate_backward(bp, g, split);
  EXPECT_TRUE(c.check_backward(out, lse, dq, dk, dv));
}

GraphShape shape(DType dtype, int64_t hq, int64_t hkv, int64_t d, int64_t dv) {
  GraphShape s;
  s.dtype = dtype, s.hq = hq, s.hkv = hkv, s.d = d, s.dv = dv;
  return s;
}

TEST(GraphEmulated, HeadDimsAndDtypes) {
  for (DType dtype : {DType::bf16, DType::f16}) {
    run_case(shape(dtype, 4, 2, 64, 64));    // 8 lanes per edge, 4 edges per warp at once
    run_case(shape(dtype, 2, 2, 128, 128));  // 16 lanes
  }
  run_case(shape(DType::bf16, 2, 1, 192, 128));  // 32 lanes, 24 hold K and 16 V
  run_case(shape(DType::bf16, 1, 1, 8, 24));     // 1 vector of K: groups of 4 lanes (V), 8 edges at once
  run_case(shape(DType::f32, 2, 1, 256, 16));    // two vectors per lane
  run_case(shape(DType::f32, 3, 3, 32, 32));
}

TEST(GraphEmulated, GroupedQueryHeads) {
  run_case(shape(DType::bf16, 7, 1, 64, 64));   // forward chunks 4 + 3, dQ chunks 2 + 2 + 2 + 1
  run_case(shape(DType::bf16, 8, 2, 128, 128));
  run_case(shape(DType::f16, 6, 2, 64, 64));    // 3 heads per KV head
}

TEST(GraphEmulated, SoftcapScaleHubAndOddSizes) {
  GraphShape s = shape(DType::bf16, 4, 2, 64, 64);
  s.softcap = 3.0;
  run_case(s);
  s.softcap = 0.0, s.scale = -0.3;
  run_case(s);
  s = shape(DType::f16, 2, 1, 128, 128);
  s.nq = 19, s.nk = 113, s.max_degree = 40, s.hub_row = 5;  // a row of 113 edges: many steps of one warp
  s.softcap = 5.0;
  run_case(s);
  s = shape(DType::bf16, 2, 2, 64, 64);
  s.nq = 1, s.nk = 1, s.max_degree = 1;  // one node, at most one edge
  run_case(s);
  s.nq = 120, s.nk = 3, s.max_degree = 3;  // every key node has ~80 query nodes: long dK/dV walks
  run_case(s);
}

// Long rows and keys of many queries split into items whose f32 partials are merged: at the library's threshold (a
// hub row of 600 edges, key nodes of ~600 queries) and at small thresholds on small graphs (every dtype, GQA).
TEST(GraphEmulated, SplitRows) {
  GraphShape s = shape(DType::bf16, 4, 2, 64, 64);
  s.nq = 30, s.nk = 600, s.max_degree = 6, s.hub_row = 11;
  run_case(s);
  s = shape(DType::f16, 2, 1, 128, 128);
  s.nq = 700, s.nk = 40, s.max_degree = 2, s.hub_key = 7;  // key 7 of ~600 query nodes, the others of ~30
  run_case(s);
  for (int split : {1, 3, 8}) {
    run_case(shape(DType::bf16, 7, 1, 64, 64), split);
    run_case(shape(DType::f32, 2, 1, 256, 16), split);
    GraphShape soft = shape(DType::f16, 8, 2, 128, 128);
    soft.softcap = 2.0, soft.hub_row = 0;
    run_case(soft, split);
  }
}

// [N, H, D] data in a layout of its own: owning storage and a 4-D batch-of-one view with the given strides.
struct Strided {
  std::vector<uint8_t> storage;
  TensorView view;
  Strided(const HostTensor& h, std::array<int64_t, 3> strides) {
    const TensorView& v = h.view();
    const int64_t es = dtype_size(v.dtype);
    int64_t reach = 1;
    for (int d = 0; d < 3; ++d) reach += (v.shape[d] - 1) * strides[d];
    storage.assign(static_cast<size_t>(reach * es + 16), 0xff);
    auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(storage.data()) + 15) / 16 * 16);
    for (int64_t a = 0; a < v.shape[0]; ++a)
      for (int64_t b = 0; b < v.shape[1]; ++b)
        for (int64_t c = 0; c < v.shape[2]; ++c)
          std::memcpy(base + (a * strides[0] + b * strides[1] + c * strides[2]) * es,
                      static_cast<const uint8_t*>(v.data) + ((a * v.shape[1] + b) * v.shape[2] + c) * es, es);
    view = TensorView::contiguous(base, v.dtype, {1, v.shape[0], v.shape[1], v.shape[2]});
    view.stride = {0, strides[0], strides[1], strides[2]};
  }
  HostTensor contiguous(const HostTensor& like) const {
    HostTensor h = like;
    const int64_t es = dtype_size(view.dtype);
    for (int64_t a = 0; a < view.shape[1]; ++a)
      for (int64_t b = 0; b < view.shape[2]; ++b)
        for (int64_t c = 0; c < view.shape[3]; ++c)
          std::memcpy(static_cast<uint8_t*>(h.view().data) + ((a * view.shape[2] + b) * view.shape[3] + c) * es,
                      static_cast<const uint8_t*>(view.data) +
                          (a * view.stride[1] + b * view.stride[2] + c * view.stride[3]) * es,
                      es);
    return h;
  }
};

TEST(GraphEmulated, StridedLayouts) {
  GraphShape s = shape(DType::bf16, 4, 2, 64, 64);
  s.nq = 41, s.nk = 23;
  const GraphCase c(s);
  const DeviceGraph g = device_graph(c);
  // Padded token strides; k with heads outermost (head stride > token stride).
  const Strided q(c.q, {s.hq * s.d + 8, s.d, 1}), k(c.k, {s.d, s.nk * s.d + 16, 1}),
      v(c.v, {s.hkv * s.dv + 24, s.dv, 1}), dout(c.dout, {s.hq * s.dv + 8, s.dv, 1});
  Strided out(c.out_like(), {s.hq * s.dv + 40, s.dv, 1}), dq(c.q, {s.hq * s.d + 16, s.d, 1}),
      dk(c.k, {s.hkv * s.d + 8, s.d, 1}), dv(c.v, {s.dv, s.nk * s.dv, 1});
  for (Strided* t : {&out, &dq, &dk, &dv}) std::fill(t->storage.begin(), t->storage.end(), 0xff);
  HostTensor lse = c.lse_like();
  const TensorView lse3 = TensorView::contiguous(lse.view().data, DType::f32, {1, s.hq, s.nq});
  const AttentionOptions o = c.options();
  detail::cuda::graph::emulate_forward(detail::make_forward_problem(q.view, k.view, v.view, {out.view, lse3}, o), g, 7);
  const HostTensor out_h = out.contiguous(c.out_like());
  EXPECT_TRUE(c.check_forward(out_h, lse));
  detail::cuda::graph::emulate_backward(
      detail::make_backward_problem(q.view, k.view, v.view, out.view, lse3, dout.view,
                                    {dq.view, dk.view, dv.view, std::nullopt}, o),
      g, 7);
  EXPECT_TRUE(c.check_backward(out_h, lse, dq.contiguous(c.q), dk.contiguous(c.k), dv.contiguous(c.v)));
}

// The check kernels find what the CPU path refuses, and nothing in a valid graph (run_case checks those).
TEST(GraphEmulated, CheckKernels) {
  struct Bad {
    std::vector<int32_t> row, col;
    int64_t nk;
    uint32_t bad_row, bad_edge;
    int32_t first, last, max_degree;
  };
  const uint32_t none = 0xffffffffu;
  const std::vector<Bad> cases = {
      {{0, 1, 2, 3}, {0, 1, 2}, 3, none, none, 0, 3, 1},     // valid
      {{1, 1, 2, 3}, {0, 1, 2}, 3, none, none, 1, 3, 1},     // first entry 1
      {{0, 1, 2, 4}, {0, 1, 2}, 3, none, none, 0, 4, 2},     // last entry 4 != 3 edges
      {{0, 2, 1, 3}, {0, 1, 2}, 3, 1, none, 0, 3, 2},        // decreasing offsets at row 1
      {{0, 1, 2, 3}, {0, 3, 2}, 3, none, 1, 0, 3, 1},        // key 3 out of range
      {{0, 2, 2, 3}, {1, 1, 2}, 3, none, 1, 0, 3, 2},        // duplicate key in row 0
      {{0, 3, 3, 3}, {0, 2, 1}, 3, none, 2, 0, 3, 3},        // decreasing keys in row 0
      {{0, 1, 1, 3}, {2, 0, 1}, 3, none, none, 0, 3, 2},     // 2 then 0: another row, valid
      {{0, 0, 0, 3}, {0, 1, -5}, 3, none, 2, 0, 3, 3},       // negative key
      {{0, -7, 9, 3}, {0, 1, 2}, 3, 0, none, 0, 3, 16},      // wild offsets: no wild read
  };
  for (const Bad& b : cases) {
    std::vector<int32_t> starts;
    const DeviceGraph g{b.row.data(), b.col.data(), static_cast<int64_t>(b.row.size()) - 1, b.nk,
                        static_cast<int64_t>(b.col.size())};
    const auto r = detail::cuda::graph::emulate_check(g, starts);
    EXPECT_EQ(r.bad_row, b.bad_row) << ::testing::PrintToString(b.row) << ::testing::PrintToString(b.col);
    EXPECT_EQ(r.bad_edge, b.bad_edge) << ::testing::PrintToString(b.row) << ::testing::PrintToString(b.col);
    EXPECT_EQ(r.first, b.first);
    EXPECT_EQ(r.last, b.last);
    EXPECT_EQ(r.max_degree, b.max_degree);
  }
}

}  // namespace
}  // namespace omniattn::testing
