#pragma once
// Kernel parameters of the sm_80 backward (Arguments -> Params): plain data built on the host from a
// BackwardProblem (bwd_arguments.cu), passed by value to the four kernels (preprocess, main, postprocess,
// sink-logit gradient).
//
// Workspace (device, f32 unless said): the query rows of a sequence are cut into m-blocks of block_m rows;
// block B = seq.m_block0 + m of query head h has "row block" index rb = B * hq + h, and
//   lse_log2[rb * block_m + r]   LSE * log2(e) of row r (+inf for rows past the sequence or with LSE -inf)
//   dsum[rb * block_m + r]       D_r = rowsum(dO * O) (0 past the sequence)
//   dq_accum[(rb * block_m + r) * d + c]   dQ in f32, accumulated by the main kernel; dq_partials such
//                                accumulators, dq_partial_floats apart (the postprocess sums them in order)
//   dsink_part[rb]               this block's share of the sink-logit gradient
//   semaphore[rb] (int32)        deterministic mode: how many KV tiles have added their dQ to the block
//   dkv_partial[((slot * batch + b) * hkv + h) * tile_keys + key][c]   a split tile's run (BwdParams::units): its
//                                dK (c < d) and dV (c - d) of sequence b, KV head h, in f32 (rows [0, d + dv))
#include <cstdint>

#include "cuda/bwd/bwd_split_plan.hpp"
#include "cuda/common/block_sparse.hpp"
#include "cuda/common/cta_timeline.hpp"

namespace omniattn::detail::cuda {

/// Geometry of one sequence (device copy of the BackwardProblem's per-sequence vectors).
struct BwdSeqInfo {
  int64_t q_begin = 0, k_begin = 0;  // first token of the sequence in the (packed) token dimension
  int32_t q_len = 0, k_len = 0;      // k_len: keys used (seqused_k)
  int32_t k_stored = 0;              // keys stored (>= k_len); dK/dV rows [k_len, k_stored) are written as 0
  int32_t m_block0 = 0;              // first m-block of the sequence in the workspace
};

struct BwdParams {
  // Tensors: element (b, token, head, c) at data + b*batch + token*token_stride + head*head + c.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* out = nullptr;
  const void* dout = nullptr;
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
  int64_t q_batch = 0, q_token = 0, q_head = 0;
  int64_t k_batch = 0, k_token = 0, k_head = 0;
  int64_t v_batch = 0, v_token = 0, v_head = 0;
  int64_t o_batch = 0, o_token = 0, o_head = 0;
  int64_t do_batch = 0, do_token = 0, do_head = 0;
  int64_t dq_batch = 0, dq_token = 0, dq_head = 0;
  int64_t dk_batch = 0, dk_token = 0, dk_head = 0;
  int64_t dv_batch = 0, dv_token = 0, dv_head = 0;
  const float* lse = nullptr;  // element (b, h, token) at lse + b*lse_batch + h*lse_head + token*lse_token
  int64_t lse_batch = 0, lse_head = 0, lse_token = 0;

  // Sequences: seqs[b] when given (device memory), else uniform lengths starting at token 0, m_block0 = b * m_blocks.
  const BwdSeqInfo* seqs = nullptr;
  int32_t uniform_q_len = 0, uniform_k_len = 0, uniform_k_stored = 0;

  int32_t batch = 0, hq = 0, hkv = 0, group = 1;
  int32_t m_blocks = 0;  // max over sequences of ceil(q_len / block_m): grid.x of the pre/postprocess
  int32_t n_blocks = 0;  // max over sequences of ceil(k_stored / tile_keys): grid.x of the main kernel
  // Keys per CTA of the main kernel: block_n, or the block mask's block_k when that is smaller (64-key mask
  // blocks at d <= 128: the CTA fills half of its 128-key tile, the other half zero and masked).
  int32_t tile_keys = 0;
  int32_t total_m_blocks = 0;  // sum over sequences of ceil(q_len / block_m)
  // Units of the main kernel's grid.x (BwdKvScheduler): n_blocks, or units.size() of a split plan.
  int32_t kv_units = 0;

  // Workspace (see the file comment).
  float* lse_log2 = nullptr;
  float* dsum = nullptr;
  float* dq_accum = nullptr;
  // f32 dQ accumulators (dq_partial_floats apart): 1, or 2 for the sm_90a D = 64 deterministic backward, whose
  // warpgroups each add their own keys' partial sum into one of their own in the turn order (BwdMainKernel::
  // dq_partials), so that no step folds the two sums across both warpgroups.
  int32_t dq_partials = 1;
  int64_t dq_partial_floats = 0;
  float* dsink_part = nullptr;
  int32_t* semaphore = nullptr;
  float* dkv_partial = nullptr;

  // Block-sparse, not deterministic (bwd_split_plan.hpp): units[t] (device, kv_units entries) is unit t's KV tile,
  // mask query-block range and partial slot; null: unit t is KV tile t over every query block. split_tiles
  // (device, split_tile_count entries): the split tiles, whose runs the split-store kernel sums into dK / dV.
  const BwdKvUnit* units = nullptr;
  const BwdSplitTile* split_tiles = nullptr;
  int32_t split_tile_count = 0;

  // Semantics (SequenceMask + ScoreMod of core/mask_policy.hpp).
  int64_t window_left = -1, window_right = -1, sinks = 0;
  float scale = 1.f, softcap = 0.f;
  bool general_logits = false;  // softcap or ALiBi: logits through ScoreMod per score (else scale * dot)
  float scale_log2 = 0.f;       // scale * log2(e)
  const float* alibi = nullptr;  // device, [B or 1, hq]
  int64_t alibi_batch_stride = 0;
  const float* sink_logits = nullptr;  // device, [hq]
  float* dsink = nullptr;              // device, [hq]

  // Deterministic mode: dQ contributions of the KV tiles of one query block are added in a fixed order,
  // descending KV tile index when dq_descending (masks with a right bound: the tile nearest the diagonal
  // comes first), ascending otherwise; the main kernel's blockIdx.x follows the same order.
  bool deterministic = false;
  bool dq_descending = false;
  // KV tiles per head launched together (BwdKvScheduler; deterministic: kDeterministicChunk, block-sparse: 1);
  // 0: a head at a time.
  int32_t dq_chunk = 0;
  // Deterministic, sm_90a dQ writer: take the turn before the consumers' dQ is staged and hand the buffer back as
  // soon as the reduction has read it, completing and passing the turn on while the consumers compute the next
  // step (Sm90BwdDqWriter). false: the serial order (turn, reduce, complete, release, hand back).
  bool dq_overlap = true;
  // Dense, no right bound, not deterministic: KV tile n starts its sweep of the query tiles at n mod (its tiles) and
  // wraps around, so that the CTAs of a head add their dQ into different blocks at a time instead of all into
  // the same one (which the L2 serializes). The deterministic order needs every CTA on one sweep direction.
  bool rotate_steps = false;

  // Debug (OMNIATTN_BWD_TIMELINE): the main kernel's CTA records, one per CTA of BwdKvScheduler::grid, in its
  // linear order (cta_timeline.hpp); null: nothing recorded.
  CtaTimelineRecord* timeline = nullptr;

  // Block-sparse mask (options.block_mask, bwd_sparse.cuh): each CTA walks the query blocks that list its KV
  // block; a mask query block is q_tiles_per_block query tiles, a mask KV block k_tiles_per_block KV tiles.
  bool block_sparse = false;
  SparseParams sparse;
  int32_t q_tiles_per_block = 1;  // block_q / block_m
  int32_t k_tiles_per_block = 1;  // block_k / tile_keys
};

}  // namespace omniattn::detail::cuda
