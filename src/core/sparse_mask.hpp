#pragma once
// A validated BlockMaskView as the kernels read it: raw int32 pointers (on the inputs' device), the geometry,
// and the mapping from a call's (batch, query head) to the mask's (batch, head).
#include <cstdint>
#include <functional>

#include "omniattn/mask.hpp"

namespace omniattn::detail {

/// One CSR block list: rows per (mask batch, mask head), `rows` rows each.
struct BlockRows {
  const int32_t* offsets = nullptr;
  const int32_t* indices = nullptr;
  int64_t heads = 1, rows = 0;
  /// [begin, end) of the block indices of row r of (mask batch mb, mask head mh).
  const int32_t* begin(int64_t mb, int64_t mh, int64_t r) const { return indices + offsets[(mb * heads + mh) * rows + r]; }
  const int32_t* end(int64_t mb, int64_t mh, int64_t r) const { return indices + offsets[(mb * heads + mh) * rows + r + 1]; }
};

struct SparseMask {
  int64_t batch = 1, heads = 1, hq = 1;  // mask batch and heads; the call's query heads
  int64_t block_q = 128, block_k = 128, q_blocks = 0, k_blocks = 0;
  BlockRows kv[2];  // per query block: [0] partial, [1] full KV blocks
  BlockRows q[2];   // per KV block: [0] partial, [1] full query blocks
  ElementMask element;
  const std::function<bool(int64_t, int64_t, int64_t, int64_t)>* host_element_mask = nullptr;  // null: none
  // Per KV block, the most query blocks any row lists (omniattn::kv_block_load); empty: unknown (a validated CUDA
  // view without host_kv_load). The CUDA backward splits long walks with it (bwd_split_plan.hpp).
  std::vector<int32_t> kv_block_load;

  int64_t mask_batch(int64_t b) const { return batch == 1 ? 0 : b; }
  /// heads == 1: shared; heads == hq: own; else heads == Hkv: the KV head's (its query heads share it).
  int64_t mask_head(int64_t h) const { return heads == 1 ? 0 : heads == hq ? h : h / (hq / heads); }

  /// The element rule of a partial block, for query head h of sequence b (sq queries, sk keys).
  bool element_visible(int64_t b, int64_t h, int64_t i, int64_t j, int64_t sq, int64_t sk) const {
    if (!element.visible(mask_head(h), i, j, sq, sk)) return false;
    return host_element_mask == nullptr || (*host_element_mask)(b, h, i, j);
  }

  /// 0: block (i / block_q, j / block_k) not listed, 1: partial, 2: full (binary search in the CPU lists).
  int block_kind(int64_t b, int64_t h, int64_t i, int64_t j) const;
  /// The whole block-sparse rule for key j of query i (the reference's element path).
  bool visible(int64_t b, int64_t h, int64_t i, int64_t j, int64_t sq, int64_t sk) const {
    const int kind = block_kind(b, h, i, j);
    return kind == 2 || (kind == 1 && element_visible(b, h, i, j, sq, sk));
  }
};

/// Calls fn(kv_block, partial) for every listed KV block of query block qb, in increasing block order.
template <class Fn>
void for_each_kv_block(const SparseMask& m, int64_t b, int64_t h, int64_t qb, Fn&& fn) {
  const int64_t mb = m.mask_batch(b), mh = m.mask_head(h);
  const int32_t *p = m.kv[0].begin(mb, mh, qb), *pe = m.kv[0].end(mb, mh, qb);
  const int32_t *f = m.kv[1].begin(mb, mh, qb), *fe = m.kv[1].end(mb, mh, qb);
  while (p < pe || f < fe) {
    if (f == fe || (p < pe && *p < *f)) fn(int64_t{*p++}, true);
    else fn(int64_t{*f++}, false);
  }
}

/// Calls fn(query_block, partial) for every query block of query head h that lists KV block kb.
template <class Fn>
void for_each_q_block(const SparseMask& m, int64_t b, int64_t h, int64_t kb, Fn&& fn) {
  const int64_t mb = m.mask_batch(b), mh = m.mask_head(h);
  const int32_t *p = m.q[0].begin(mb, mh, kb), *pe = m.q[0].end(mb, mh, kb);
  const int32_t *f = m.q[1].begin(mb, mh, kb), *fe = m.q[1].end(mb, mh, kb);
  while (p < pe || f < fe) {
    if (f == fe || (p < pe && *p < *f)) fn(int64_t{*p++}, true);
    else fn(int64_t{*f++}, false);
  }
}

}  // namespace omniattn::detail
