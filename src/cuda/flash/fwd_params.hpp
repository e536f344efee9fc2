#pragma once
// Kernel parameters of the sm_80 forward (the "Params" half of Arguments -> Params): plain data, built on
// the host from a ForwardProblem (fwd_launch_params.cu) and passed by value to the kernel.
#include <cstdint>

#include "cuda/common/block_sparse.hpp"

namespace omniattn::detail::cuda {

/// Geometry of one sequence of a batch (device copy of Problem::q_begin/q_len/k_begin/k_len).
struct SeqInfo {
  int64_t q_begin = 0, k_begin = 0;  // first token of the sequence in the (packed) token dimension
  int32_t q_len = 0, k_len = 0;
};

struct FwdParams {
  // Tensors: element (b, token, head, c) at data + b*batch + token*token_stride + head*head + c.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  int64_t q_batch = 0, q_token = 0, q_head = 0;
  int64_t k_batch = 0, k_token = 0, k_head = 0;
  int64_t v_batch = 0, v_token = 0, v_head = 0;
  int64_t o_batch = 0, o_token = 0, o_head = 0;
  float* lse = nullptr;  // optional, f32, element (b, h, token) at lse + b*lse_batch + h*lse_head + token*lse_token
  int64_t lse_batch = 0, lse_head = 0, lse_token = 0;

  // Sequences: seqs[b] when given (device memory), else every sequence starts at token 0 with the uniform lengths.
  const SeqInfo* seqs = nullptr;
  int32_t uniform_q_len = 0, uniform_k_len = 0;

  // Heads. Query rows of a CTA tile are (token, head) pairs: row R of head block hb is token R / pack of
  // query head hb * pack + R % pack. pack = 1: one head per tile; pack = group: the query heads sharing one
  // KV head are interleaved in one tile (GQA with few query tokens: fewer, fuller tiles).
  int32_t batch = 0, hq = 0, group = 1, pack = 1;
  int32_t head_blocks = 0;  // hq / pack
  int32_t m_blocks = 0;     // ceil(max_q_len * pack / block_m)

  // Semantics (SequenceMask + ScoreMod of core/mask_policy.hpp).
  int64_t window_left = -1, window_right = -1, sinks = 0;
  float scale = 1.f, softcap = 0.f;
  bool general_logits = false;   // softcap, ALiBi or a negative scale: compute logits with ScoreMod per score
  float mult_log2 = 0.f;         // score units -> base-2 logits: scale*log2(e), or log2(e) with general_logits
  const float* alibi = nullptr;  // device, [B or 1, hq]
  int64_t alibi_batch_stride = 0;
  const float* sink_logits = nullptr;  // device, [hq]

  // Block-sparse calls (options.block_mask): the mask's lists and element rule on the device; q_blocks = 0
  // when the call has no block mask (the dense walk). A CTA's query tile lies inside one mask query block.
  SparseParams sparse;
  OMNIATTN_HD bool is_sparse() const { return sparse.q_blocks > 0; }
};

}  // namespace omniattn::detail::cuda
