#pragma once
// A KV cache and a decode call after validation, normalized so that the reference, the CPU path and the CUDA
// launch address every tensor the same way:
//   K row (page p, slot s, KV head h) at k.data + p * k.page + s * k.token + h * k.head (head dim contiguous);
//   key j of sequence b is in page page_of(b, j), slot j % page_size.
// A contiguous cache is page_size = capacity with page b for sequence b (no block table).
#include <cstdint>
#include <optional>
#include <vector>

#include "core/mask_policy.hpp"
#include "core/problem.hpp"
#include "omniattn/decode.hpp"

namespace omniattn::detail {

/// A page pool: strides in elements.
struct PagePool {
  void* data = nullptr;
  int64_t page = 0, token = 0, head = 0;
};

struct CacheGeometry {
  DType dtype = DType::bf16;
  Device device;
  bool paged = false;
  int64_t batch = 0, hkv = 0, d = 0, dv = 0;
  int64_t num_pages = 0;  // pages in the pool (contiguous: B)
  int64_t page_size = 0;  // tokens per page (contiguous: capacity)
  int64_t max_pages = 0;  // block-table columns (contiguous: 1)
  PagePool k, v;
  // Block table on the cache's device (null for a contiguous cache): entry (b, i) at table[b * table_batch + i].
  const int32_t* table = nullptr;
  int64_t table_batch = 0;
  // Host copy of the table (same indexing), when there is one (CPU caches, or KVCache::host_block_table):
  // every entry a sequence uses was checked to be in [0, num_pages).
  const int32_t* host_table = nullptr;
  int32_t* seq_lens = nullptr;       // on the cache's device, contiguous [B]
  int32_t* host_seq_lens = nullptr;  // the user's host copy (KVCache::host_seq_lens), when given
  std::vector<int64_t> lens;         // host values of seq_lens

  int64_t capacity() const { return page_size * max_pages; }
  /// Page holding key j of sequence b (host side; needs host_table for a paged cache).
  int64_t page_of(int64_t b, int64_t j) const {
    return paged ? host_table[b * table_batch + j / page_size] : b;
  }
};

struct DecodeProblem : ScoreSemantics {
  CacheGeometry cache;
  Backend requested = Backend::automatic;
  DecodeConfig config;
  int64_t batch = 0, sq = 0, hq = 0, hkv = 0, d = 0, dv = 0;
  Operand q, out;                 // [B, Sq, H, D]
  std::optional<RowOperand> lse;  // [B, Hq, Sq]
  void* stream = nullptr;

  int64_t group() const { return hq / hkv; }
  SequenceMask mask(int64_t b) const { return {sq, cache.lens[b], window_left, window_right, sinks}; }
};

struct AppendProblem {
  CacheGeometry cache;
  int64_t sn = 0;          // new tokens per sequence
  Operand k_new, v_new;    // [B, Sn, Hkv, D]
  // Rotary (absent: rotary_dim = 0): tables f32 [max_positions, rotary_dim / 2], row stride in elements.
  int64_t rotary_dim = 0, max_positions = 0;
  const float* cos = nullptr;
  const float* sin = nullptr;
  int64_t cos_row = 0, sin_row = 0;
  bool interleaved = false;
  Operand q;  // [B, Sn, Hq, D] rotated in place when q.data
  int64_t hq = 0;
  bool advance_lengths = true;
  void* stream = nullptr;
};

/// Validates a cache (shapes, dtypes, devices, strides, lengths within capacity, used block-table entries in
/// range when a host copy of the table exists) and normalizes it. `extra_tokens`: tokens about to be appended
/// (their pages are checked too).
CacheGeometry make_cache_geometry(const KVCache& cache, int64_t extra_tokens, void* stream);

DecodeProblem make_decode_problem(const TensorView& q, const KVCache& cache, const DecodeOutputs& outputs,
                                  const AttentionOptions& options, const DecodeConfig& config);

AppendProblem make_append_problem(const KVCache& cache, const TensorView& k_new, const TensorView& v_new,
                                  const AppendOptions& options);

}  // namespace omniattn::detail
