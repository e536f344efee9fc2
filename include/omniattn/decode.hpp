#pragma once
/// @file decode.hpp
/// Decoding: a few new query tokens per sequence (1 to 16: speculative decoding) against a (paged) KV cache.
///
/// q [B, Sq, Hq, D] are the Sq newest tokens of each sequence, already in the cache (kv_cache_append first):
/// query i of sequence b sits at position seq_lens[b] - Sq + i, so `causal` is the library's bottom-right
/// aligned rule (query i sees keys j <= i + seq_lens[b] - Sq). Every score option of attention_forward applies:
/// window, sinks, softcap, ALiBi, sink logits, softmax_scale. cu_seqlens and seqused_k do not (the cache's
/// seq_lens say how many keys each sequence has).
///
/// Out-of-range page ids: with a host copy of the block table (CPU caches, or KVCache::host_block_table) they
/// are an omniattn::Error before anything runs. Otherwise the CUDA kernel checks every page id it reads against
/// num_pages, never reads through a bad one, and writes NaN to every output row (O and LSE) of the (sequence,
/// KV head) whose keys it could not read: a bad table is never silently wrong.
#include <cstdint>
#include <optional>

#include "omniattn/attention.hpp"
#include "omniattn/kv_cache.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn {

/// Outputs of attention_decode.
struct DecodeOutputs {
  TensorView out;                 ///< O [B, Sq, Hq, Dv], dtype of q
  std::optional<TensorView> lse;  ///< f32 [B, Hq, Sq]
};

/// How the CUDA kernel splits the keys across SMs. `automatic` picks: no split when the (sequence, KV head)
/// pairs already fill the GPU evenly, else stream-K.
enum class DecodeSchedule : uint8_t {
  automatic,
  /// One CTA per (sequence, KV head, query-row block), whole key range.
  no_split,
  /// FlashDecoding: each (sequence, KV head) cut into `num_splits` equal key ranges, merged through their LSE.
  split_kv,
  /// Lean Attention: the concatenated key ranges of all (sequence, KV head) pairs cut into equal work units,
  /// one contiguous run of units per CTA (ragged batches balance), partial results merged through their LSE.
  stream_k,
};

/// Knobs of the decode scheduler (tests and benchmarks; the defaults are what serving should use).
struct DecodeConfig {
  DecodeSchedule schedule = DecodeSchedule::automatic;
  /// split_kv: splits per (sequence, KV head); 0 = enough to fill the GPU. CPU: key ranges per
  /// (sequence, KV head); 0 = enough to give every thread work.
  int num_splits = 0;
  /// stream_k: CTAs of the persistent grid; 0 = every SM filled to the kernel's occupancy.
  int num_ctas = 0;
};

/// Attention of q against the cache. Throws omniattn::Error on bad input, writing nothing.
/// Backends: reference (float64, gathers K/V), cpu, cuda_sm80 (bf16/f16, D = Dv in {64, 128, 256}); automatic
/// picks by the cache's device. options.cuda_stream orders CUDA work.
void attention_decode(const TensorView& q, const KVCache& cache, const DecodeOutputs& outputs,
                      const AttentionOptions& options = {}, const DecodeConfig& config = {});

}  // namespace omniattn
