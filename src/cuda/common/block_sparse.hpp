#pragma once
// The block lists of a validated block mask as the CUDA kernels read them (plain data, passed by value inside
// the kernel parameters), and the host conversion from core's SparseMask. docs/sparse.md gives the layout.
//
// Walk order: a query block's KV blocks are visited partial blocks first, then full ones (online softmax takes
// any order; the masked tiles first, as the dense kernels do). Index `it` in [0, count) maps to a block in O(1),
// so a producer and its consumers walk the same sequence independently.
#include <cstdint>

#include "core/sparse_mask.hpp"
#include "omniattn/mask.hpp"

namespace omniattn::detail::cuda {

/// One query block's (or KV block's) listed blocks: [0, partial) partial, [partial, count) full.
struct BlockRun {
  const int32_t* partial_blocks = nullptr;
  const int32_t* full_blocks = nullptr;
  int32_t partial = 0, count = 0;

  OMNIATTN_HD int32_t block(int32_t it) const {
    return it < partial ? partial_blocks[it] : full_blocks[it - partial];
  }
  OMNIATTN_HD bool is_partial(int32_t it) const { return it < partial; }
};

struct SparseParams {
  // CSR lists on the device: [0] partial, [1] full. kv_*: rows per query block; q_*: rows per KV block.
  const int32_t* kv_offsets[2] = {nullptr, nullptr};
  const int32_t* kv_indices[2] = {nullptr, nullptr};
  const int32_t* q_offsets[2] = {nullptr, nullptr};
  const int32_t* q_indices[2] = {nullptr, nullptr};
  int32_t batch = 1, heads = 1, hq = 1;  // mask batch (1 or B), mask heads (1, Hkv or Hq), the call's Hq
  int32_t block_q = 128, block_k = 128;  // tokens per mask block
  int32_t q_blocks = 0, k_blocks = 0;    // rows of the kv lists and of the q lists
  ElementMask element;                   // the rule of partial blocks (arrays on the device)

  OMNIATTN_HD int32_t mask_batch(int32_t b) const { return batch == 1 ? 0 : b; }
  OMNIATTN_HD int32_t mask_head(int32_t h) const {
    return heads == 1 ? 0 : heads == hq ? h : h / (hq / heads);
  }
  /// The KV blocks of query block qb, for sequence b and query head h.
  OMNIATTN_HD BlockRun kv_run(int32_t b, int32_t h, int32_t qb) const {
    return run(kv_offsets, kv_indices, (int64_t{mask_batch(b)} * heads + mask_head(h)) * q_blocks + qb);
  }
  /// The query blocks that list KV block kb, for sequence b and query head h.
  OMNIATTN_HD BlockRun q_run(int32_t b, int32_t h, int32_t kb) const {
    return run(q_offsets, q_indices, (int64_t{mask_batch(b)} * heads + mask_head(h)) * k_blocks + kb);
  }

 private:
  static OMNIATTN_HD BlockRun run(const int32_t* const offsets[2], const int32_t* const indices[2], int64_t row) {
    BlockRun r;
    const int32_t p0 = offsets[0][row], p1 = offsets[0][row + 1], f0 = offsets[1][row], f1 = offsets[1][row + 1];
    r.partial_blocks = indices[0] + p0;
    r.full_blocks = indices[1] + f0;
    r.partial = p1 - p0;
    r.count = r.partial + (f1 - f0);
    return r;
  }
};

/// The kernel form of a validated mask (pointers already on the inputs' device). Callers refuse masks with a
/// host_element_mask (a CPU-only functor) before this.
inline SparseParams make_sparse_params(const SparseMask& m) {
  SparseParams s;
  for (int k = 0; k < 2; ++k) {
    s.kv_offsets[k] = m.kv[k].offsets;
    s.kv_indices[k] = m.kv[k].indices;
    s.q_offsets[k] = m.q[k].offsets;
    s.q_indices[k] = m.q[k].indices;
  }
  s.batch = static_cast<int32_t>(m.batch);
  s.heads = static_cast<int32_t>(m.heads);
  s.hq = static_cast<int32_t>(m.hq);
  s.block_q = static_cast<int32_t>(m.block_q);
  s.block_k = static_cast<int32_t>(m.block_k);
  s.q_blocks = static_cast<int32_t>(m.q_blocks);
  s.k_blocks = static_cast<int32_t>(m.k_blocks);
  s.element = m.element;
  return s;
}

}  // namespace omniattn::detail::cuda
