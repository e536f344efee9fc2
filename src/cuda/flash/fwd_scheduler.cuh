#pragma once
// Which work a CTA does: the tile scheduler (blockIdx -> query tile, head block, batch) and, for that tile,
// the query tokens it covers and the KV tiles it must visit (only tiles with at least one visible key).
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/common/ptx.cuh"  // CUDA built-ins (dim3, blockIdx), or their host emulation
#include "cuda/flash/fwd_params.hpp"
#include "cuda/flash/fwd_sparse_walk.hpp"

namespace omniattn::detail::cuda {

struct WorkTile {
  int m_block = 0;     // query tile index within the sequence (rows m_block*block_m ..)
  int head_block = 0;  // query head (pack = 1) or KV head (pack = group)
  int batch = 0;
};

/// One CTA per (query tile, head block, sequence). blockIdx.x walks the query tiles from the last one: under
/// a causal mask the last tiles see the most keys, so the heaviest CTAs start first and the light ones fill
/// the tail of the wave. Consecutive CTAs share a head, so their K/V tiles are shared in L2.
/// (Schedulers share this interface -- grid() on the host, tile() on the device -- so a persistent or
/// causal-balanced scheduler is a drop-in replacement.)
struct LongestFirstScheduler {
  static dim3 grid(const FwdParams& p) {
    return dim3(static_cast<unsigned>(p.m_blocks), static_cast<unsigned>(p.head_blocks),
                static_cast<unsigned>(p.batch));
  }
  static __device__ __forceinline__ WorkTile tile(const FwdParams& p) {
    return {p.m_blocks - 1 - static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.z)};
  }
};

/// The KV tiles a query tile visits: the sink tiles [0, sink_blocks) then the window tiles
/// [window_first, window_first + count - sink_blocks), processed last tile first (the tile at the end of the
/// visible range, which usually needs masking, comes first).
struct KvRange {
  static constexpr bool kSparse = false;  // every tile is dense (see SparseKvWalk for block-sparse calls)
  int sink_blocks = 0;
  int window_first = 0;
  int count = 0;

  /// KV tile index of step `it` (0 <= it < count).
  __device__ __forceinline__ int block(int it) const {
    const int k = count - 1 - it;
    return k < sink_blocks ? k : window_first + (k - sink_blocks);
  }
  /// One past the last window tile.
  __device__ __forceinline__ int window_end() const { return window_first + (count - sink_blocks); }
};

/// Everything a CTA needs to know about its tile, computed once.
struct CtaWork {
  int batch = 0, head_block = 0;
  int row0 = 0;  // first packed query row of the tile (row R = token R / pack, head head_block*pack + R % pack)
  int rows = 0;  // packed rows of the sequence: q_len * pack
  SeqInfo seq;
  int64_t t_first = 0, t_end = 0;  // query tokens [t_first, t_end) covered by the tile's valid rows
  KvRange kv;
};

/// Fills `w` for `tile`; false when the tile lies past the end of its sequence (nothing to do).
template <int kBlockM, int kBlockN>
__device__ __forceinline__ bool make_cta_work(const FwdParams& p, const WorkTile& tile, CtaWork& w) {
  w.batch = tile.batch;
  w.head_block = tile.head_block;
  w.seq = p.seqs ? p.seqs[tile.batch] : SeqInfo{0, 0, p.uniform_q_len, p.uniform_k_len};
  w.rows = w.seq.q_len * p.pack;
  w.row0 = tile.m_block * kBlockM;
  if (w.row0 >= w.rows) return false;
  const int row_end = min(w.rows, w.row0 + kBlockM);
  w.t_first = w.row0 / p.pack;
  w.t_end = (row_end + p.pack - 1) / p.pack;

  // Visible keys of the tile's rows lie in [0, min(sinks, end)) and [begin, end): key_begin/key_end are
  // non-decreasing in the row, so the first row gives the lowest begin and the last row the highest end.
  const SequenceMask mask{w.seq.q_len, w.seq.k_len, p.window_left, p.window_right, p.sinks};
  const int64_t end = mask.key_end(w.t_end - 1);
  const int64_t begin = mask.key_begin(w.t_first);
  const int64_t sink_end = mask.sinks < end ? mask.sinks : end;
  w.kv.sink_blocks = static_cast<int>((sink_end + kBlockN - 1) / kBlockN);
  w.kv.window_first = max(w.kv.sink_blocks, static_cast<int>(begin / kBlockN));
  const int window_last = static_cast<int>((end + kBlockN - 1) / kBlockN);  // one past the last window tile
  w.kv.count = w.kv.sink_blocks + max(0, window_last - w.kv.window_first);
  return true;
}

/// The KV tiles of `w` under the call's block mask: the listed blocks of the tile's mask query block (its
/// tokens lie in one, fwd_layout_refusal guarantees it) within the tiles of w.kv. Head: the tile's first query
/// head (with GQA packing the mask is shared by the packed heads).
template <int kBlockN>
__device__ __forceinline__ SparseKvWalk make_cta_sparse_walk(const FwdParams& p, const CtaWork& w) {
  const SparseParams& m = p.sparse;
  const BlockRun run = m.kv_run(w.batch, w.head_block * p.pack, static_cast<int32_t>(w.t_first / m.block_q));
  return make_sparse_walk(run, m.k_blocks, split_log2_of(m.block_k, kBlockN), w.kv.sink_blocks, w.kv.window_first,
                          w.kv.window_end());
}

}  // namespace omniattn::detail::cuda
