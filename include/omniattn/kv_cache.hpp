#pragma once
/// @file kv_cache.hpp
/// Paged KV caches for decoding: page pools, a block table per sequence, per-sequence lengths, and the
/// append of new tokens (optionally with rotary embedding applied to K on the way in).
///
/// Paged layout (vLLM's): K pages [num_pages, page_size, Hkv, D], V pages [num_pages, page_size, Hkv, Dv];
/// token j of sequence b lives in page block_table[b, j / page_size], slot j % page_size. Any page size >= 1
/// works (1, 16, 64, 256, not only powers of two). Pages may be shared between sequences (prefix caching).
/// Contiguous layout: no block table; K [B, capacity, Hkv, D], V [B, capacity, Hkv, Dv] (the paged layout with
/// page_size = capacity and page b for sequence b).
///
/// Any strides work as long as the head dim is contiguous; the CUDA kernels also need every row 16-byte
/// aligned (strides multiples of 8 elements for 16-bit types).
#include <cstdint>
#include <optional>

#include "omniattn/tensor.hpp"

namespace omniattn {

/// A KV cache view (non-owning). Tensors live on one device; f16/bf16 (f32 too on the CPU).
struct KVCache {
  TensorView k;  ///< paged: [num_pages, page_size, Hkv, D]; contiguous: [B, capacity, Hkv, D]
  TensorView v;  ///< paged: [num_pages, page_size, Hkv, Dv]; contiguous: [B, capacity, Hkv, Dv]
  /// i32 [B, max_pages] on the cache's device; absent for a contiguous cache. Only the first
  /// ceil(seq_lens[b] / page_size) entries of row b are read; each must be in [0, num_pages).
  std::optional<TensorView> block_table;
  /// i32 [B] on the cache's device: tokens held by each sequence (<= max_pages * page_size, or capacity).
  TensorView seq_lens;
  /// Optional host (CPU) copies of block_table and seq_lens for a CUDA cache. They must hold the same values as
  /// the device tensors. With host_block_table, every used page id is checked before any kernel runs (an
  /// Error, nothing written); without it the kernels check page ids themselves (see attention_decode).
  /// Without host_seq_lens the lengths are copied to the host (a synchronization with options.cuda_stream):
  /// the decode scheduler plans its work from them.
  std::optional<TensorView> host_block_table;
  std::optional<TensorView> host_seq_lens;

  /// A paged cache.
  static KVCache paged(const TensorView& k_pages, const TensorView& v_pages, const TensorView& block_table,
                       const TensorView& seq_lens) {
    return KVCache{k_pages, v_pages, block_table, seq_lens, std::nullopt, std::nullopt};
  }
  /// A contiguous cache ([B, capacity, Hkv, D] per tensor).
  static KVCache contiguous(const TensorView& k, const TensorView& v, const TensorView& seq_lens) {
    return KVCache{k, v, std::nullopt, seq_lens, std::nullopt, std::nullopt};
  }
  bool is_paged() const { return block_table.has_value(); }
};

/// Rotary embedding conventions.
enum class RotaryStyle : uint8_t {
  /// GPT-NeoX / Llama: pairs (i, i + rotary_dim/2).
  half_split,
  /// GPT-J: pairs (2i, 2i + 1).
  interleaved,
};

/// Rotary position embedding: pair i of a vector at position p becomes
///   (x0, x1) -> (x0 cos[p, i] - x1 sin[p, i], x0 sin[p, i] + x1 cos[p, i]);
/// dims from rotary_dim on pass through unchanged.
struct Rotary {
  TensorView cos;  ///< f32 [max_positions, rotary_dim / 2], on the cache's device
  TensorView sin;  ///< f32 [max_positions, rotary_dim / 2], on the cache's device
  RotaryStyle style = RotaryStyle::half_split;
};

/// Options of kv_cache_append.
struct AppendOptions {
  /// Rotate K (and `q`, when given) at the absolute positions of the new tokens before storing.
  std::optional<Rotary> rotary;
  /// Q [B, Sn, Hq, D] of the same new tokens, rotated in place with the same positions (needs `rotary`).
  std::optional<TensorView> q;
  /// Add Sn to seq_lens (and to host_seq_lens when given) after the append.
  bool advance_lengths = true;
  /// CUDA caches: the cudaStream_t to enqueue on (nullptr: the legacy default stream).
  void* cuda_stream = nullptr;
};

/// Appends K/V of Sn new tokens per sequence: token t of sequence b goes to position seq_lens[b] + t
/// (its rotary position too). k_new [B, Sn, Hkv, D], v_new [B, Sn, Hkv, Dv], same dtype and device as the
/// cache. Throws omniattn::Error (nothing written) on bad arguments, a length that would exceed the
/// capacity, or a block-table entry out of [0, num_pages) for a page the new tokens need (checked on the host
/// copy of the table: the CPU table, or host_block_table; without it a CUDA kernel skips the writes of a token
/// whose page id is out of range, and the decode of that sequence then reports the bad id as NaN).
void kv_cache_append(const KVCache& cache, const TensorView& k_new, const TensorView& v_new,
                     const AppendOptions& options = {});

}  // namespace omniattn
