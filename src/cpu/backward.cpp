// CPU backward driver: the dQ pass over query blocks (which also computes D = Σ_j P dP and the
// sink-logit gradient's shares), then the dK/dV pass over key blocks (backward_q.cpp, backward_kv.cpp).
// No atomics: every task owns the rows it writes and every sum has a fixed order, so gradients are bitwise
// reproducible for any thread count.
#include <cstring>
#include <vector>

#include "cpu/backward_passes.hpp"
#include "cpu/kernels.hpp"
#include "cpu/sparse_chunks.hpp"

namespace omniattn::detail::cpu {
namespace {

// Rows [k_len, k_stored) of dK/dV (keys cut off by seqused_k) influence nothing: their gradient is 0.
void zero_unused_keys(const BackwardProblem& p) {
  const int64_t elem = dtype_size(p.dtype);
  auto zero_row = [elem](const Operand& t, int64_t b, int64_t token, int64_t h, int64_t n) {
    std::memset(static_cast<uint8_t*>(t.data) + elem * (b * t.batch + token * t.token + h * t.head), 0,
                static_cast<size_t>(elem * n));
  };
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t j = p.k_len[b]; j < p.k_stored[b]; ++j)
      for (int64_t kvh = 0; kvh < p.hkv; ++kvh) {
        zero_row(p.grad_k, b, p.k_begin[b] + j, kvh, p.d);
        zero_row(p.grad_v, b, p.k_begin[b] + j, kvh, p.dv);
      }
}

struct Task {
  int64_t b, head, start, length;  // queries or keys [start, start + length)
};

}  // namespace

void backward(const BackwardProblem& p) {
  // D and LSE for every (b, h, query): hq · total_q floats each, sequence b's rows starting at seq_start[b].
  std::vector<int64_t> seq_start(static_cast<size_t>(p.batch) + 1, 0);
  for (int64_t b = 0; b < p.batch; ++b) seq_start[b + 1] = seq_start[b] + p.hq * p.q_len[b];
  std::vector<float> delta(static_cast<size_t>(seq_start[p.batch]) + 1), lse(delta.size());
  const RowStats stats{delta.data(), lse.data(), seq_start.data(), p.q_len.data()};

  std::vector<Task> tasks;
  const int64_t block_q = backward_block_q();
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.hq; ++h)
      for_each_tile(p.q_len[b], p.sparse ? p.sparse->block_q : block_q, block_q, kTileLanes,
                    [&](int64_t q0, int64_t rows) { tasks.push_back({b, h, q0, rows}); });
  std::vector<double> dsink_parts(tasks.size(), 0.0);
  parallel_tasks(static_cast<int64_t>(tasks.size()), backward_q_workspace(p), [&](int64_t t, const Workspace& ws) {
    const Task& k = tasks[static_cast<size_t>(t)];
    dsink_parts[static_cast<size_t>(t)] = backward_q_task(p, stats, k.b, k.head, k.start, k.length, ws);
  });
  if (p.dsink_logits) {
    std::vector<double> dsink(static_cast<size_t>(p.hq), 0.0);
    for (size_t t = 0; t < tasks.size(); ++t) dsink[static_cast<size_t>(tasks[t].head)] += dsink_parts[t];
    for (int64_t h = 0; h < p.hq; ++h) p.dsink_logits[h] = static_cast<float>(dsink[static_cast<size_t>(h)]);
  }

  tasks.clear();
  const int64_t block_k = backward_block_k();
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t kvh = 0; kvh < p.hkv; ++kvh)
      for_each_tile(p.k_len[b], p.sparse ? p.sparse->block_k : block_k, block_k, kTileLanes,
                    [&](int64_t j0, int64_t keys) { tasks.push_back({b, kvh, j0, keys}); });
  parallel_tasks(static_cast<int64_t>(tasks.size()), backward_kv_workspace(p), [&](int64_t t, const Workspace& ws) {
    const Task& k = tasks[static_cast<size_t>(t)];
    backward_kv_task(p, stats, k.b, k.head, k.start, k.length, ws);
  });

  zero_unused_keys(p);
}

}  // namespace omniattn::detail::cpu
