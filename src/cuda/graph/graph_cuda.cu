// Graph attention on CUDA tensors (sparse/graph_cuda.hpp): what the kernels need beyond the attention checks
// (dtype, head dims, 16-byte rows, the graph's tensors), the workspace, the graph's validation on the device, its
// transposition for the backward, and the launches, all on the call's stream.
#include <cstdint>
#include <tuple>
#include <utility>
#include <string>

#include "core/validate.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/graph/graph_check.hpp"
#include "cuda/graph/graph_config.hpp"
#include "cuda/graph/graph_launch.hpp"
#include "cuda/graph/graph_params_fill.hpp"
#include "cuda/graph/graph_plan.hpp"
#include "cuda/graph/graph_transpose.hpp"
#include "cuda/graph/graph_workspace.hpp"
#include "sparse/graph_cuda.hpp"

namespace omniattn::detail::graph_cuda {
namespace {

using namespace cuda::graph;

// Rows of `name` start 16-byte aligned: every lane moves whole 16-byte vectors. The stride of a dimension of size 1
// is never used (and may be anything).
void require_vector_rows(const char* name, const Operand& t, int64_t nodes, int64_t heads, int per_vector) {
  const auto address = reinterpret_cast<uintptr_t>(t.data);
  const int64_t token = nodes > 1 ? t.token : 0, head = heads > 1 ? t.head : 0;
  OMNI_REQUIRE(address % 16 == 0 && token % per_vector == 0 && head % per_vector == 0, name,
               "16-byte aligned rows on CUDA (a 16-byte aligned address, token and head strides multiples of " +
                   std::to_string(per_vector) + " elements)",
               "address % 16 = " + std::to_string(address % 16) + ", strides " + std::to_string(token) + " and " +
                   std::to_string(head));
}

void require_graph_tensor(const TensorView& t, const char* name, Device device) {
  require_defined(t, name);
  require_dtype(t, name, DType::i32);
  require_ndim(t, name, 1);
  require_device(t, name, device);
  OMNI_REQUIRE(t.shape[0] <= 1 || t.stride[0] == 1, name, "a contiguous tensor", "stride " + std::to_string(t.stride[0]));
}

// Checks common to forward and backward; returns the graph as the kernels see it.
DeviceGraph check_call(const Problem& p, const GraphArgs& g) {
  OMNI_REQUIRE(p.dtype == DType::bf16 || p.dtype == DType::f16 || p.dtype == DType::f32, "q",
               "dtype bf16, f16 or f32 (graph attention on CUDA)", to_string(p.dtype));
  const int per_vector = 16 / element_bytes(p.dtype);
  OMNI_REQUIRE(p.d <= kMaxHeadDim && p.dv <= kMaxHeadDim && p.d % per_vector == 0 && p.dv % per_vector == 0, "q",
               "head dims D, Dv <= " + std::to_string(kMaxHeadDim) + " and multiples of " + std::to_string(per_vector) +
                   " on CUDA for " + to_string(p.dtype),
               "D = " + std::to_string(p.d) + ", Dv = " + std::to_string(p.dv));
  require_vector_rows("q", p.q, g.nq, p.hq, per_vector);
  require_vector_rows("k", p.k, g.nk, p.hkv, per_vector);
  require_vector_rows("v", p.v, g.nk, p.hkv, per_vector);
  OMNI_REQUIRE(g.nq < INT32_MAX && g.nk < INT32_MAX, "q", "fewer than 2^31 - 1 query and key nodes",
               std::to_string(g.nq) + " and " + std::to_string(g.nk));
  require_graph_tensor(g.row_offsets, "row_offsets", p.device);
  require_graph_tensor(g.col_indices, "col_indices", p.device);
  OMNI_REQUIRE(g.row_offsets.shape[0] == g.nq + 1, "row_offsets", std::to_string(g.nq + 1) + " entries (Nq + 1)",
               std::to_string(g.row_offsets.shape[0]));
  return {g.row_offsets.ptr<const int32_t>(), g.col_indices.ptr<const int32_t>(), g.nq, g.nk, g.col_indices.shape[0]};
}

// The buffers of one split plan over `rows` rows of `entries` entries (sized when the layout's base is null).
PlanBuffers take_plan(WorkspaceLayout& w, int64_t rows, int64_t entries, std::size_t scratch_bytes) {
  PlanBuffers b;
  b.counts = w.take<uint64_t>(static_cast<size_t>(rows));
  b.totals = w.take<uint64_t>(static_cast<size_t>(rows));
  b.items = w.take<SplitItem>(static_cast<size_t>(max_items(rows, entries, kSplitEntries)));
  b.slot_rows = w.take<int32_t>(static_cast<size_t>(max_slots(entries, kSplitEntries)));
  b.scratch = w.take<char>(scratch_bytes);
  b.scratch_bytes = scratch_bytes;
  return b;
}

// The workspace's memory laid out by `layout` (called once to size, once to place).
template <class Layout>
auto place(GraphWorkspace& workspace, cudaStream_t stream, Layout&& layout) {
  WorkspaceLayout sizing;
  layout(sizing);
  WorkspaceLayout placed(workspace.acquire(sizing.bytes(), stream));
  return layout(placed);
}

}  // namespace

void forward(const ForwardProblem& p, const GraphArgs& graph) {
  const DeviceGraph g = check_call(p, graph);
  require_vector_rows("outputs.out", p.out, g.nq, p.hq, 16 / element_bytes(p.dtype));
  cuda::DeviceGuard guard(p.device.index);
  const auto stream = static_cast<cudaStream_t>(p.stream);
  const std::size_t plan_scratch = g.nq > 0 ? plan_scratch_bytes(g.nq) : 0;

  struct Pieces {
    GraphCheckRecord* record;
    int32_t* row_starts;  // [nnz]
    PlanBuffers plan;
  };
  GraphWorkspace& metadata = GraphWorkspace::of_device(p.device.index);
  GraphWorkspace& partials = GraphWorkspace::of_device(p.device.index, GraphWorkspace::Use::partials);
  const auto lock = metadata.lock(), partials_lock = partials.lock();  // held until the kernels are enqueued
  const Pieces s = place(metadata, stream, [&](WorkspaceLayout& w) {
    Pieces x;
    x.record = w.take<GraphCheckRecord>(1);
    x.row_starts = w.take<int32_t>(static_cast<size_t>(g.nnz));
    x.plan = take_plan(w, g.nq, g.nnz, plan_scratch);
    return x;
  });
  const GraphCheckRecord checked = check_graph(g, s.row_starts, s.record, stream);

  GraphFwdParams k = make_fwd_params(p, g);
  if (checked.max_degree > kSplitEntries) {  // hub rows: split them, merge their partials after
    k.plan = build_plan(g.row_offsets, g.nq, kSplitEntries, s.plan, stream);
    k.items = max_items(g.nq, g.nnz, kSplitEntries);
    k.slots = max_slots(g.nnz, kSplitEntries);
    const size_t states = static_cast<size_t>(k.slots * p.hq);
    std::tie(k.part_acc, k.part_max) = place(partials, stream, [&](WorkspaceLayout& w) {
      return std::pair{w.take<float>(states * static_cast<size_t>(p.dv)), w.take<PartialMax>(states)};
    });
  }
  launch_forward(k, p.dtype, heads_per_warp(k.group, kFwdMaxHeads), stream);
}

void backward(const BackwardProblem& p, const GraphArgs& graph) {
  const DeviceGraph g = check_call(p, graph);
  const int per_vector = 16 / element_bytes(p.dtype);
  require_vector_rows("out", p.out, g.nq, p.hq, per_vector);
  require_vector_rows("dout", p.dout, g.nq, p.hq, per_vector);
  require_vector_rows("grads.dq", p.grad_q, g.nq, p.hq, per_vector);
  require_vector_rows("grads.dk", p.grad_k, g.nk, p.hkv, per_vector);
  require_vector_rows("grads.dv", p.grad_v, g.nk, p.hkv, per_vector);
  cuda::DeviceGuard guard(p.device.index);
  const auto stream = static_cast<cudaStream_t>(p.stream);

  const size_t nnz = static_cast<size_t>(g.nnz), scratch_bytes = transpose_scratch_bytes(g.nnz, g.nk);
  const size_t q_scratch = g.nq > 0 ? plan_scratch_bytes(g.nq) : 0, kv_scratch = g.nk > 0 ? plan_scratch_bytes(g.nk) : 0;
  struct Pieces {
    GraphCheckRecord* record;
    int32_t *row_starts, *edge_rows;  // [nnz] each: check_graph's counts, then the query node of each edge
    TransposedGraph transposed;       // offsets [nk + 1], sources [nnz]
    RowStat* stats;                   // [nq, hq]
    void* scratch;                    // CUB
    PlanBuffers q_plan, kv_plan;
  };
  GraphWorkspace& metadata = GraphWorkspace::of_device(p.device.index);
  GraphWorkspace& partials = GraphWorkspace::of_device(p.device.index, GraphWorkspace::Use::partials);
  const auto lock = metadata.lock(), partials_lock = partials.lock();
  const Pieces s = place(metadata, stream, [&](WorkspaceLayout& w) {
    Pieces x;
    x.record = w.take<GraphCheckRecord>(1);
    x.row_starts = w.take<int32_t>(nnz);
    x.edge_rows = w.take<int32_t>(nnz);
    x.transposed.offsets = w.take<int32_t>(static_cast<size_t>(g.nk) + 1);
    x.transposed.sources = w.take<int32_t>(nnz);
    x.stats = w.take<RowStat>(static_cast<size_t>(g.nq * p.hq));
    x.scratch = w.take<char>(scratch_bytes);
    x.q_plan = take_plan(w, g.nq, g.nnz, q_scratch);
    x.kv_plan = take_plan(w, g.nk, g.nnz, kv_scratch);
    return x;
  });
  const GraphCheckRecord checked = check_graph(g, s.row_starts, s.record, stream);
  transpose_graph(g.col_indices, g.nnz, g.nk, s.row_starts, s.edge_rows, s.scratch, scratch_bytes, s.transposed,
                  stream);

  GraphBwdParams k = make_bwd_params(p, g);
  k.t_offsets = s.transposed.offsets, k.t_sources = s.transposed.sources;
  k.stats = s.stats;
  // Split plans: the CSR's only when a row is long (known from the check); the transposed graph's always (its
  // longest list is known only on the device).
  const bool split_q = checked.max_degree > kSplitEntries;
  if (split_q) {
    k.q_plan = build_plan(g.row_offsets, g.nq, kSplitEntries, s.q_plan, stream);
    k.q_items = max_items(g.nq, g.nnz, kSplitEntries);
    k.q_slots = max_slots(g.nnz, kSplitEntries);
  }
  if (g.nk > 0) {
    k.kv_plan = build_plan(s.transposed.offsets, g.nk, kSplitEntries, s.kv_plan, stream);
    k.kv_items = max_items(g.nk, g.nnz, kSplitEntries);
    k.kv_slots = max_slots(g.nnz, kSplitEntries);
  }
  const size_t q_parts = static_cast<size_t>(k.q_slots * p.hq * p.d), kv_slots = static_cast<size_t>(k.kv_slots * p.hkv);
  std::tie(k.part_dq, k.part_dk, k.part_dv) = place(partials, stream, [&](WorkspaceLayout& w) {
    return std::tuple{w.take<float>(q_parts), w.take<float>(kv_slots * static_cast<size_t>(p.d)),
                      w.take<float>(kv_slots * static_cast<size_t>(p.dv))};
  });
  launch_backward(k, p.dtype, heads_per_warp(k.group, kBwdMaxHeads), stream);
}

}  // namespace omniattn::detail::graph_cuda
