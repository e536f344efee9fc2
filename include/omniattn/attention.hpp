#pragma once
/// @file attention.hpp
/// Exact attention: softmax(mask(softcap(scale * Q Kᵀ) + alibi)) V, forward and backward, on every backend.
///
/// Layouts (FlashAttention's): Q [B, Sq, Hq, D], K [B, Sk, Hkv, D], V [B, Sk, Hkv, Dv], O [B, Sq, Hq, Dv],
/// LSE [B, Hq, Sq] f32. Any other order works through strides; the head dim must be contiguous.
/// Variable-length batches ("documents"): Q [total_q, Hq, D], K [total_k, Hkv, D], V [total_k, Hkv, Dv],
/// O [total_q, Hq, Dv], LSE [Hq, total_q], with options.cu_seqlens_q/k (i32 [B+1]).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "omniattn/mask.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn {

/// Which implementation runs a call. `automatic` picks the fastest backend that supports the call.
enum class Backend : uint8_t { automatic, reference, cpu, cuda_sm80, cuda_sm90 };
/// "reference", "cpu", ...
std::string to_string(Backend b);

/// Every option of exact attention. Defaults give plain full (non-causal) attention.
///
/// Visibility of key j to query i in a sequence of Sq queries and Sk keys, with the diagonal
/// d = i + Sk - Sq (bottom-right aligned, as FlashAttention >= 2.1):
///   j <= d + window_right   (when window_right >= 0; causal means window_right = 0)
///   and (j >= d - window_left (when window_left >= 0) or j < sinks).
/// A row with no visible key outputs 0 and LSE = -inf (or the sink logit, when one is given).
struct AttentionOptions {
  /// Multiplies Q·K. Default 1/sqrt(D).
  std::optional<double> softmax_scale;
  /// Mask keys after the (bottom-right aligned) diagonal.
  bool causal = false;
  /// Sliding window: keys more than `window_left` before / `window_right` after the diagonal are
  /// masked. -1 means unbounded on that side.
  int64_t window_left = -1;
  int64_t window_right = -1;
  /// The first `sinks` keys stay visible whatever window_left says (StreamingLLM attention sinks).
  int64_t sinks = 0;
  /// Logit soft-capping: s -> softcap * tanh(s / softcap), applied after scaling. 0 disables.
  double softcap = 0.0;
  /// ALiBi: f32 [Hq] or [B, Hq]; adds -slope * |i + Sk - Sq - j| to the logit (after softcap).
  std::optional<TensorView> alibi_slopes;
  /// Learnable per-head sink logit (gpt-oss): f32 [Hq]; an extra term exp(sink) in each row's
  /// softmax denominator, with no value vector. The LSE includes it.
  std::optional<TensorView> sink_logits;
  /// Variable-length batches: i32 [B+1], non-decreasing, starting at 0, ending at total tokens.
  std::optional<TensorView> cu_seqlens_q;
  std::optional<TensorView> cu_seqlens_k;
  /// Optional i32 [B]: only the first seqused_k[b] keys of sequence b are used (KV caches).
  std::optional<TensorView> seqused_k;
  /// Which implementation to use.
  Backend backend = Backend::automatic;
  /// Backward only: bitwise reproducible gradients (CPU backends always are).
  bool deterministic = false;
  /// Block-sparse attention (mask.hpp): only the listed KV blocks of each query block are computed, partial
  /// blocks through the mask's element rule; ANDed with causal/window/sinks above. Its tensors live on the
  /// inputs' device. CPU and reference backends for now (the CUDA backends refuse it, saying so).
  std::optional<BlockMaskView> block_mask;
  /// CUDA backends: the cudaStream_t to enqueue on (nullptr: the legacy default stream). The call returns
  /// once its work is enqueued; outputs are ready in that stream's order.
  void* cuda_stream = nullptr;
};

/// Outputs of attention_forward. `lse` is optional.
struct ForwardOutputs {
  TensorView out;                  ///< O [B, Sq, Hq, Dv] (or [total_q, Hq, Dv]), dtype of Q
  std::optional<TensorView> lse;   ///< f32 [B, Hq, Sq] (or [Hq, total_q])
};

/// Computes O (and optionally LSE). Throws omniattn::Error on bad input, writing nothing.
void attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                       const ForwardOutputs& outputs, const AttentionOptions& options = {});

/// Gradient outputs of attention_backward; same shapes and dtypes as q, k, v.
struct BackwardOutputs {
  TensorView dq, dk, dv;
  std::optional<TensorView> dsink_logits;  ///< f32 [Hq]; required when options.sink_logits is set
};

/// Gradients given O and LSE of the forward and dO. Throws omniattn::Error on bad input.
void attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                        const TensorView& out, const TensorView& lse, const TensorView& dout,
                        const BackwardOutputs& grads, const AttentionOptions& options = {});

/// What one backend is, and whether it would run a call (and if not, why).
struct BackendStatus {
  Backend backend;
  std::string name;
  bool available;         ///< compiled in and its device present
  std::string summary;    ///< dtypes, head dims, features
};
/// Every backend known to this build.
std::vector<BackendStatus> list_backends();
/// For each backend, std::nullopt if it would run this forward call, else the reason it refuses.
std::vector<std::pair<Backend, std::optional<std::string>>> explain_forward(
    const TensorView& q, const TensorView& k, const TensorView& v, const ForwardOutputs& outputs,
    const AttentionOptions& options = {});

}  // namespace omniattn
