#pragma once
// One attention call after validation, normalized so that every backend indexes tensors the same way:
// element (b, token t of sequence b, head h, dim c) of a tensor X sits at
//   X.data + b * X.batch + (begin[b] + t) * X.token + h * X.head + c.
// For varlen inputs batch strides are 0 and begin[] comes from cu_seqlens; otherwise begin[] is 0.
#include <cstdint>
#include <optional>
#include <vector>

#include "core/mask_policy.hpp"
#include "core/sparse_mask.hpp"
#include "omniattn/attention.hpp"

namespace omniattn::detail {

/// A (batch, token, head) addressed tensor; the innermost dim is contiguous.
struct Operand {
  void* data = nullptr;
  int64_t batch = 0, token = 0, head = 0;  // strides in elements
  template <class T> T* at(int64_t b, int64_t token_index, int64_t h) const {
    return static_cast<T*>(data) + b * batch + token_index * token + h * head;
  }
};

/// LSE-like f32 tensors indexed (b, h, token): [B, Hq, Sq] or varlen [Hq, total_q].
struct RowOperand {
  float* data = nullptr;
  int64_t batch = 0, head = 0, token = 0;
  float& at(int64_t b, int64_t h, int64_t token_index) const {
    return data[b * batch + h * head + token_index * token];
  }
};

/// AttentionOptions' score and mask fields as every call reads them (forward, backward, decode): validated by
/// read_score_semantics.
struct ScoreSemantics {
  double scale = 1.0, softcap = 0.0;
  int64_t window_left = -1, window_right = -1, sinks = 0;  // causal folded into window_right = 0
  const float* alibi = nullptr;  // [B or 1, Hq]; on the call's device
  int64_t alibi_batch_stride = 0;
  const float* sink_logits = nullptr;  // [Hq]; on the call's device

  template <class T> ScoreMod<T> score_mod(int64_t b, int64_t h) const {
    return {T(scale), T(softcap), alibi ? T(alibi[b * alibi_batch_stride + h]) : T(0)};
  }
};

/// Validates and reads options' softmax_scale (default 1 / sqrt(d)), softcap, window, sinks, causal, alibi_slopes
/// ([hq] or [batch, hq]) and sink_logits ([hq]) for a call on `device`.
ScoreSemantics read_score_semantics(const AttentionOptions& o, int64_t d, int64_t batch, int64_t hq, Device device);

struct Problem : ScoreSemantics {
  DType dtype = DType::f32;
  Device device;
  Backend requested = Backend::automatic;
  int64_t batch = 0, hq = 0, hkv = 0, d = 0, dv = 0;
  bool varlen = false;
  // Per sequence: token offsets and lengths (k_len already limited by seqused_k).
  std::vector<int64_t> q_begin, q_len, k_begin, k_len;
  // Keys stored per sequence (>= k_len). Backward writes zeros to dk/dv rows in [k_len, k_stored).
  std::vector<int64_t> k_stored;
  int64_t max_q_len = 0, max_k_len = 0, total_q = 0;
  Operand q, k, v;
  bool deterministic = false;
  void* stream = nullptr;  // cudaStream_t of the CUDA backends (nullptr: the legacy default stream)
  std::optional<SparseMask> sparse;  // options.block_mask, validated; pointers on the inputs' device

  int64_t group() const { return hq / hkv; }  // query heads per KV head
  SequenceMask mask(int64_t b) const { return {q_len[b], k_len[b], window_left, window_right, sinks}; }
  // Total query-key pairs computed by a dense kernel (for FLOP counts): sum over sequences.
  double visible_pairs() const;
};

struct ForwardProblem : Problem {
  Operand out;
  std::optional<RowOperand> lse;
};

struct BackwardProblem : Problem {
  Operand out, dout;
  Operand grad_q, grad_k, grad_v;  // dQ, dK, dV (named apart from the head dims d and dv)
  RowOperand lse;
  float* dsink_logits = nullptr;  // [Hq]
};

/// Validates options.block_mask against the problem (geometry, device, contents) and sets p.sparse.
void fill_sparse(Problem& p, const AttentionOptions& options);

ForwardProblem make_forward_problem(const TensorView& q, const TensorView& k, const TensorView& v,
                                    const ForwardOutputs& outputs, const AttentionOptions& options);
BackwardProblem make_backward_problem(const TensorView& q, const TensorView& k, const TensorView& v,
                                      const TensorView& out, const TensorView& lse,
                                      const TensorView& dout, const BackwardOutputs& grads,
                                      const AttentionOptions& options);

}  // namespace omniattn::detail
