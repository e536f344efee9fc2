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

}  // namespace

GraphCheckRecord emulate_check(const DeviceGraph& g, std::vector<int32_t>& row_starts) {
  GraphCheckRecord record{0xffffffffu, 0xffffffffu, -1, -1};  // the launch's 0xff memset
  row_starts.assign(static_cast<size_t>(g.nnz), 0);
  for (int64_t i = 0; i <= g.nq; ++i) check_row(g, i, row_starts.data(), &record);
  for (int64_t e = 0; e < g.nnz; ++e) check_edge(g, e, row_starts.data(), &record);
  return record;
}

void emulate_forward(const ForwardProblem& p, const DeviceGraph& g) {
  const GraphFwdParams k = make_fwd_params(p, g);
  with_traits<kFwdMaxHeads>(p.dtype, k.lanes, heads_per_warp(k.group, kFwdMaxHeads), [&]<class Traits>() {
    run_warps(k.nq * k.hkv * k.chunks,
              [&](int64_t warp, int lane) { graph_forward_warp<Traits>(k, warp, lane); });
  });
}

void emulate_backward(const BackwardProblem& p, const DeviceGraph& g) {
  // The transposition's contract (graph_transpose.cu, CUB there): query node of each edge = inclusive prefix sum
  // of the row-start counts; a stable sort of the edges by key; offsets by binary search in the sorted keys.
  std::vector<int32_t> row_starts;
  emulate_check(g, row_starts);
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
  with_traits<kBwdMaxHeads>(p.dtype, k.lanes, heads_per_warp(k.group, kBwdMaxHeads), [&]<class Traits>() {
    run_warps(k.nq * k.hkv * k.chunks, [&](int64_t warp, int lane) { graph_backward_q_warp<Traits>(k, warp, lane); });
  });
  with_traits<1>(p.dtype, k.lanes, 1, [&]<class Traits>() {
    run_warps(k.nk * k.hkv, [&](int64_t warp, int lane) { graph_backward_kv_warp<Traits>(k, warp, lane); });
  });
}

}  // namespace omniattn::detail::cuda::graph
