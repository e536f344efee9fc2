// The CUDA graph-attention kernels' code compiled for the host emulation (src/cuda/common/emulation.hpp). No CUDA
// header may be included in this translation unit.
#define OMNIATTN_CUDA_EMULATION 1
#include "cuda/common/emulation.hpp"

#include <algorithm>
#include <numeric>

#include "cuda/graph/graph_backward_kv.cuh"
#include "cuda/graph/graph_backward_q.cuh"
#include "cuda/graph/graph_check.cuh"
#include "cuda/graph/graph_dispatch.cuh"
#include "cuda/graph/graph_forward.cuh"
#include "cuda/graph/graph_merge.cuh"
#include "cuda/graph/graph_params_fill.hpp"
#include "gpu/graph_emulator/graph_emulated.hpp"

namespace omniattn::detail::cuda::graph {
namespace {

// Every CTA of a launch over `warps` warp items, one after the other; body(warp, lane) per thread.
template <class Body>
void run_warps(int64_t warps, Body&& body) {
  const int64_t ctas = (warps + kWarpsPerCta - 1) / kWarpsPerCta;
  for (int64_t c = 0; c < ctas; ++c)
    emu::run_cta(dim3(static_cast<unsigned>(c)), kThreadsPerCta, 0, [&body, c] {
      body(c * kWarpsPerCta + static_cast<int64_t>(threadIdx.x / 32), static_cast<int>(threadIdx.x % 32));
    });
}

// A split plan built on the host by the planner's per-row bodies (graph_split.cuh), CUB's scan as std's.
struct HostPlan {
  std::vector<uint64_t> counts, totals;
  std::vector<SplitItem> items;
  std::vector<int32_t> slot_rows;
  SplitPlan build(const int32_t* offsets, int64_t rows, int64_t entries, int32_t per) {
    counts.resize(static_cast<size_t>(rows));
    totals.resize(counts.size());
    items.assign(static_cast<size_t>(max_items(rows, entries, per)), SplitItem{-7, -7, -7, -7});
    slot_rows.assign(static_cast<size_t>(max_slots(entries, per)), -7);  // garbage past the real slots
    for (int64_t r = 0; r < rows; ++r) counts[static_cast<size_t>(r)] = plan_count(offsets, r, per);
    std::inclusive_scan(counts.begin(), counts.end(), totals.begin());
    for (int64_t r = 0; r < rows; ++r) plan_fill(offsets, r, per, totals.data(), items.data(), slot_rows.data());
    return SplitPlan{items.data(), totals.data(), slot_rows.data(), rows, per};
  }
};

}  // namespace

GraphCheckRecord emulate_check(const DeviceGraph& g, std::vector<int32_t>& row_starts) {
  GraphCheckRecord record{0xffffffffu, 0xffffffffu, -1, -1, -1};  // the launch's 0xff memset
  row_starts.assign(static_cast<size_t>(g.nnz), 0);
  for (int64_t i = 0; i <= g.nq; ++i) check_row(g, i, row_starts.data(), &record);
  for (int64_t e = 0; e < g.nnz; ++e) check_edge(g, e, row_starts.data(), &record);
  return record;
}

void emulate_forward(const ForwardProblem& p, const DeviceGraph& g, int split_entries) {
  GraphFwdParams k = make_fwd_params(p, g);
  std::vector<int32_t> row_starts;
  HostPlan plan;
  std::vector<float> part_acc;
  std::vector<PartialMax> part_max;
  if (emulate_check(g, row_starts).max_degree > split_entries) {
    k.plan = plan.build(g.row_offsets, g.nq, g.nnz, split_entries);
    k.items = max_items(g.nq, g.nnz, split_entries);
    k.slots = max_slots(g.nnz, split_entries);
    part_acc.assign(static_cast<size_t>(k.slots * p.hq * p.dv), NAN);
    part_max.assign(static_cast<size_t>(k.slots * p.hq), PartialMax{NAN, NAN});
    k.part_acc = part_acc.data(), k.part_max = part_max.data();
  }
  with_traits<kFwdMaxHeads>(p.dtype, k.lanes, heads_per_warp(k.group, kFwdMaxHeads), [&]<class Traits>() {
    run_warps(k.items * k.hkv * k.chunks, [&](int64_t warp, int lane) { graph_forward_warp<Traits>(k, warp, lane); });
    if (k.plan.items)
      run_warps(k.slots * k.hq,
                [&](int64_t warp, int lane) { graph_forward_merge_warp<typename Traits::Element>(k, warp, lane); });
  });
}

void emulate_backward(const BackwardProblem& p, const DeviceGraph& g, int split_entries) {
  // The transposition's contract (graph_transpose.cu, CUB there): query node of each edge = inclusive prefix sum
  // of the row-start counts; a stable sort of the edges by key; offsets by binary search in the sorted keys.
  std::vector<int32_t> row_starts;
  const GraphCheckRecord checked = emulate_check(g, row_starts);
  const auto nnz = static_cast<size_t>(g.nnz);
  std::vector<int32_t> edge_rows(nnz), order(nnz), sources(nnz), offsets(static_cast<size_t>(g.nk) + 1);
  std::inclusive_scan(row_starts.begin(), row_starts.end(), edge_rows.begin());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return g.col_indices[a] < g.col_indices[b]; });
  std::vector<uint32_t> sorted_keys(nnz);
  for (size_t t = 0; t < nnz; ++t) {
    sorted_keys[t] = static_cast<uint32_t>(g.col_indices[order[t]]);
    sources[t] = edge_rows[static_cast<size_t>(order[t])];
  }
  for (int64_t j = 0; j <= g.nk; ++j) offsets[static_cast<size_t>(j)] = key_offset(sorted_keys.data(), g.nnz, j);

  GraphBwdParams k = make_bwd_params(p, g);
  std::vector<RowStat> stats(static_cast<size_t>(g.nq * p.hq + 1), RowStat{NAN, NAN});
  k.t_offsets = offsets.data(), k.t_sources = sources.data(), k.stats = stats.data();
  HostPlan q_plan, kv_plan;
  if (checked.max_degree > split_entries) {
    k.q_plan = q_plan.build(g.row_offsets, g.nq, g.nnz, split_entries);
    k.q_items = max_items(g.nq, g.nnz, split_entries);
    k.q_slots = max_slots(g.nnz, split_entries);
  }
  if (g.nk > 0) {
    k.kv_plan = kv_plan.build(offsets.data(), g.nk, g.nnz, split_entries);
    k.kv_items = max_items(g.nk, g.nnz, split_entries);
    k.kv_slots = max_slots(g.nnz, split_entries);
  }
  std::vector<float> part_dq(static_cast<size_t>(k.q_slots * p.hq * p.d + 1), NAN),
      part_dk(static_cast<size_t>(k.kv_slots * p.hkv * p.d + 1), NAN),
      part_dv(static_cast<size_t>(k.kv_slots * p.hkv * p.dv + 1), NAN);
  k.part_dq = part_dq.data(), k.part_dk = part_dk.data(), k.part_dv = part_dv.data();
  with_traits<kBwdMaxHeads>(p.dtype, k.lanes, heads_per_warp(k.group, kBwdMaxHeads), [&]<class Traits>() {
    run_warps(k.q_items * k.hkv * k.chunks,
              [&](int64_t warp, int lane) { graph_backward_q_warp<Traits>(k, warp, lane); });
    if (k.q_plan.items)
      run_warps(k.q_slots * k.hq,
                [&](int64_t warp, int lane) { graph_dq_merge_warp<typename Traits::Element>(k, warp, lane); });
  });
  with_traits<1>(p.dtype, k.lanes, 1, [&]<class Traits>() {
    run_warps(k.kv_items * k.hkv, [&](int64_t warp, int lane) { graph_backward_kv_warp<Traits>(k, warp, lane); });
    if (k.kv_plan.items)
      run_warps(k.kv_slots * k.hkv,
                [&](int64_t warp, int lane) { graph_dkv_merge_warp<typename Traits::Element>(k, warp, lane); });
  });
}

}  // namespace omniattn::detail::cuda::graph
