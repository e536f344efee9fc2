#pragma once
// The steps of one backward CTA (one KV tile of one KV head) and what a block-sparse mask changes in them.
//
// Dense: for each query head of the KV head's group, the query tiles [first, last) that see the tile
// (QueryBlocksOfTile). Block-sparse (BwdParams::block_sparse): for each query head, the query blocks that list
// the tile's KV block (the transposed lists q_partial / q_full of SparseParams::q_run, merged in increasing
// block order), each cut into q_tiles_per_block query tiles of block_m rows. Query blocks that do not list the
// KV block never appear: nothing is loaded or computed for them. Listed tiles past the sequence's queries, or
// that the AttentionOptions mask hides entirely (SequenceMask::classify empty), are skipped too, so the set of
// (KV tile, query tile) pairs is exactly "listed AND classify not empty"; the deterministic order below counts
// the same set.
//
// With GQA each query head has its own list when the mask has Hq heads; else the group's heads share one.
#include <cstdint>

#include "cuda/bwd/bwd_scheduler.cuh"
#include "cuda/bwd/bwd_tiles.hpp"
#include "cuda/common/noinline.hpp"

namespace omniattn::detail::cuda {

/// One step of the mainloop: query tile `m` (rows [m * block_m, ...) of the sequence) of query head `head`.
/// `element`: the tile lies in a partial mask block (ElementMask evaluated per element).
struct BwdStep {
  int head = 0, m = 0;
  bool element = false;
};

/// The step's workspace row block (bwd_params.hpp): its LSE / D rows and its dQ accumulator block.
__device__ __forceinline__ int64_t bwd_row_block(const BwdParams& p, const BwdKvWork& w, const BwdStep& step) {
  return static_cast<int64_t>(w.seq.m_block0 + step.m) * p.hq + step.head;
}
/// Row 0 of the CTA's K and V tile, and of the step's Q and dO tile (rows `token` elements apart).
template <class Element>
struct BwdRows {
  static __device__ __forceinline__ const Element* k(const BwdParams& p, const BwdKvWork& w) {
    return static_cast<const Element*>(p.k) + w.batch * p.k_batch + (w.seq.k_begin + w.j0) * p.k_token +
           w.kv_head * p.k_head;
  }
  static __device__ __forceinline__ const Element* v(const BwdParams& p, const BwdKvWork& w) {
    return static_cast<const Element*>(p.v) + w.batch * p.v_batch + (w.seq.k_begin + w.j0) * p.v_token +
           w.kv_head * p.v_head;
  }
  static __device__ __forceinline__ const Element* q(const BwdParams& p, const BwdKvWork& w, int t0, int head) {
    return static_cast<const Element*>(p.q) + w.batch * p.q_batch + (w.seq.q_begin + t0) * p.q_token +
           head * p.q_head;
  }
  static __device__ __forceinline__ const Element* dout(const BwdParams& p, const BwdKvWork& w, int t0, int head) {
    return static_cast<const Element*>(p.dout) + w.batch * p.do_batch + (w.seq.q_begin + t0) * p.do_token +
           head * p.do_head;
  }
};

/// Cursor over the steps of one CTA, in order. Every thread of the CTA walks it identically (CTA-uniform).
/// Plain ints only (the list base pointers stay in the kernel parameters): the cursor is live across every step
/// of a kernel that already uses all 255 registers. kKind: a kernel specialized on the mask kind (BwdWalkKind)
/// compiles one walk, so that the other's code costs its register allocation nothing.
template <int kBlockM, BwdWalkKind kKind = BwdWalkKind::any>
struct BwdWalk {
  int g = 0;              // query head within the KV head's group
  int m = 0, m_end = 0;   // next query tile and the end of the current range (dense: the interval)
  int m_start = 0;        // dense: where each head's sweep starts and ends (BwdParams::rotate_steps)
  int ip = 0, ip_end = 0; // sparse: next / end entry of q_indices[0] (partial) for the current head
  int jf = 0, jf_end = 0; // sparse: the same in q_indices[1] (full)
  bool element = false;   // sparse: the current mask query block is partial

  /// Sparse: the current head's row of the q lists (docs/sparse.md: (mask batch · heads + mask head) · k_blocks
  /// + KV block, as SparseParams::q_run).
  /// A run of a split tile (BwdParams::units) keeps the entries in its query-block range [qb_lo, qb_hi).
  __device__ __forceinline__ void load_row(const BwdParams& p, const BwdKvWork& w) {
    const SparseParams& sp = p.sparse;
    const int64_t row = (int64_t{sp.mask_batch(w.batch)} * sp.heads + sp.mask_head(w.kv_head * p.group + g)) *
                            sp.k_blocks + w.k_block;
    ip = sp.q_offsets[0][row], ip_end = sp.q_offsets[0][row + 1];
    jf = sp.q_offsets[1][row], jf_end = sp.q_offsets[1][row + 1];
    if (p.units != nullptr) {
      const BwdKvUnit u = p.units[BwdKvScheduler::unit(p)];
      if (u.qb_lo > 0) {
        ip = first_at_least(sp.q_indices[0], ip, ip_end, u.qb_lo);
        jf = first_at_least(sp.q_indices[1], jf, jf_end, u.qb_lo);
      }
      if (u.qb_hi < sp.q_blocks) {
        ip_end = first_at_least(sp.q_indices[0], ip, ip_end, u.qb_hi);
        jf_end = first_at_least(sp.q_indices[1], jf, jf_end, u.qb_hi);
      }
    }
  }

  /// The first entry in [lo, hi) of an increasing list that is >= value (hi when none): a binary search, a few
  /// dependent loads once per head of a run.
  static __device__ __forceinline__ int first_at_least(const int32_t* list, int lo, int hi, int value) {
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (list[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  __device__ __forceinline__ void init(const BwdParams& p, const BwdKvWork& w) {
    if (bwd_walks_sparse<kKind>(p)) {
      load_row(p, w);
    } else {
      m_end = w.blocks.last;
      const int blocks = m_end - w.blocks.first;
      if (blocks <= 0) g = p.group;  // no query tile sees the tile
      m = m_start = w.blocks.first + (p.rotate_steps && blocks > 0 ? w.n % blocks : 0);
    }
  }

  /// The next step into `s`; false when there is none.
  __device__ __forceinline__ bool next(const BwdParams& p, const BwdKvWork& w, const SequenceMask& mask, BwdStep& s) {
    if (!bwd_walks_sparse<kKind>(p)) {
      if (g >= p.group) return false;
      s.head = w.kv_head * p.group + g;
      s.m = m;
      s.element = false;
      if (++m == m_end) m = w.blocks.first;  // the sweep wraps around to its start
      if (m == m_start) ++g;
      return true;
    }
    for (;;) {
      if (m < m_end) {  // a query tile of the current mask block
        const int t = m++;
        const int i0 = t * kBlockM, i1 = min(i0 + kBlockM, w.seq.q_len);
        if (mask.classify(i0, i1, w.j0, w.j0 + p.tile_keys) == SequenceMask::Tile::empty) continue;
        s.head = w.kv_head * p.group + g;
        s.m = t;
        s.element = element;
        return true;
      }
      if (ip < ip_end || jf < jf_end) {  // the next listed mask query block, in increasing order
        const int32_t qp = ip < ip_end ? p.sparse.q_indices[0][ip] : INT32_MAX;
        const int32_t qf = jf < jf_end ? p.sparse.q_indices[1][jf] : INT32_MAX;
        element = qp < qf;
        const int qb = element ? qp : qf;
        if (element) ++ip;
        else ++jf;
        m = qb * p.q_tiles_per_block;
        // a block may reach past this sequence's queries
        m_end = min(m + p.q_tiles_per_block, (w.seq.q_len + kBlockM - 1) / kBlockM);
        continue;
      }
      if (++g >= p.group) return false;  // the next query head of the group: its own list, or the same one
      load_row(p, w);
      m = m_end = 0;
    }
  }
};

/// Whether the element rule is a grid alone (no window, per-head window or documents: prefix and sinks then change
/// nothing) with its packed table (ElementMask::grid_table): grid_hidden_bits decides it.
__device__ __forceinline__ bool grid_table_alone(const ElementMask& e) {
  return e.grid.kind != GridMask::Kind::none && !e.grid_table.empty() && e.window_left < 0 && e.window_right < 0 &&
         e.head_windows.empty() && e.q_document.empty();
}

/// element_hidden_bits for a rule that is a grid alone (grid_table_alone), from make_grid_table's table: per key
/// row of the fragment its packed coordinates, per query column its window's packed ends (neighborhood) or its
/// packed coordinates (axial); then a few integer ops per element (KeyLayout::in_box / in_line) instead of
/// GridMask::visible's 64-bit divisions. Out of line (the form run on the GPU); ptxas, sm_90a D = 128 kernel, spill
/// stores / loads: 1376 / 1774 B without this path, 1416 / 1886 out of line, 1408 / 1810 inlined (not yet run on a
/// GPU); D = 64 unchanged either way.
template <class SAcc>
__device__ OMNIATTN_NOINLINE uint32_t grid_hidden_bits(const BwdParams& p, const BwdKvWork& w, int t0, int key0,
                                                       int row0, int lane) {
  const GridTableReader grid = GridTableReader::of(p.sparse.element);
  uint32_t key[SAcc::kRowSlots];
  bool key_in[SAcc::kRowSlots];
#pragma unroll
  for (int r = 0; r < SAcc::kRowSlots; ++r) {
    const int j = w.j0 + key0 + SAcc::row_of_slot(r, lane);
    key_in[r] = j < w.seq.k_len;
    key[r] = key_in[r] ? grid.key(j) : 0u;
  }
  uint32_t hidden = 0;
#pragma unroll 2
  for (int c = 0; c < SAcc::kN * 2; ++c) {  // query column c = (n, e1): bits c * kRowSlots + r
    const int i = t0 + row0 + SAcc::col_of(c / 2, c % 2, lane);
    if (i >= w.seq.q_len) continue;
    const GridTableReader::Query q = grid.query(i);
#pragma unroll
    for (int r = 0; r < SAcc::kRowSlots; ++r)
      if (key_in[r] && !grid.visible(key[r], q)) hidden |= 1u << (c * SAcc::kRowSlots + r);
  }
  return hidden;
}

/// Bit i set: element i of a thread's S^T fragment (SAcc, i = (n * 2 + e1) * kRowSlots + r, as in
/// BwdMainloop::scores_to_gradients) is hidden by the ElementMask. Evaluated in a loop that is not unrolled
/// (ElementMask::visible is large: documents, head windows, grids) and only for pairs inside the sequence
/// (the mask's arrays cover the longest sequence; padded rows and keys are masked anyway).
/// kGridTable: a grid alone goes through its table (grid_hidden_bits). The sm_90a backward takes it; the sm_80 one
/// does not (any table path there made some instantiation spill, docs/sparse.md). Per-row key ranges for windows,
/// sinks and prefix were tried and gained nothing measurable (docs/sparse.md; removed after session 10).
template <class SAcc, bool kGridTable = false>
__device__ __forceinline__ uint32_t element_hidden_bits(const BwdParams& p, const BwdKvWork& w, int head, int t0,
                                                        int key0, int row0, int lane) {
  constexpr int kElements = SAcc::kN * 2 * SAcc::kRowSlots;
  static_assert(kElements <= 32, "one bit per fragment element");
  if constexpr (kGridTable) {
    if (grid_table_alone(p.sparse.element)) return grid_hidden_bits<SAcc>(p, w, t0, key0, row0, lane);
  }
  const int64_t mask_head = p.sparse.mask_head(head);
  uint32_t hidden = 0;
#pragma unroll 1
  for (int i = 0; i < kElements; ++i) {
    const int r = i % SAcc::kRowSlots, e1 = (i / SAcc::kRowSlots) % 2, n = i / (2 * SAcc::kRowSlots);
    const int row = t0 + row0 + SAcc::col_of(n, e1, lane);
    const int key = w.j0 + key0 + SAcc::row_of_slot(r, lane);
    if (row < w.seq.q_len && key < w.seq.k_len &&
        !p.sparse.element.visible(mask_head, row, key, w.seq.q_len, w.seq.k_len))
      hidden |= 1u << i;
  }
  return hidden;
}

/// Integer sum over the 32 lanes of a warp (values below 2^24: exact through the f32 shuffle, which is also
/// what the host emulation provides).
__device__ __forceinline__ int warp_sum_small(int x) {
  float f = static_cast<float>(x);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) f += __shfl_xor_sync(0xffffffffu, f, offset);
  return static_cast<int>(f);
}

/// Deterministic mode with a block mask: the turn of KV tile w.n at query tile m of head `head`, i.e. how many
/// of the KV tiles that add to that query tile come before it in the semaphore order (ascending tile index, or
/// descending when p.dq_descending). Those tiles are the ones of the KV blocks its mask query block lists
/// (kv_partial, kv_full: the same relation as the q lists the CTAs walk) that the AttentionOptions mask does
/// not hide (`tiles`), so a tile that does not list the block is never waited for. Called by a whole warp (the
/// list is split over the lanes); every lane gets the result.
__device__ __forceinline__ int sparse_dq_rank(const BwdParams& p, const BwdKvWork& w, const KvTilesOfRows& tiles,
                                              int head, int m, int lane) {
  const BlockRun run = p.sparse.kv_run(w.batch, head, m / p.q_tiles_per_block);
  const int per_block = p.k_tiles_per_block;
  int before = 0;
  for (int i = lane; i < run.count; i += 32) {
    const int first = run.block(i) * per_block, last = first + per_block;  // the KV block's tiles [first, last)
    before += p.dq_descending ? tiles.count_in(max(first, w.n + 1), last) : tiles.count_in(first, min(last, w.n));
  }
  return warp_sum_small(before);
}

/// Deterministic mode: the turn of KV tile w.n in the semaphore of query tile `m` of head `head` (rows from t0):
/// its rank among the KV tiles that add to that tile, in the order of BwdParams::dq_descending. Called by a whole
/// warp (the block-sparse rank splits its list over the lanes); every lane gets the result.
__device__ __forceinline__ int dq_turn(const BwdParams& p, const BwdKvWork& w, const SequenceMask& mask, int head,
                                       int m, int t0, int block_m, int lane) {
  const KvTilesOfRows tiles = KvTilesOfRows::of(mask, t0, min(t0 + block_m, static_cast<int>(mask.sq)), p.tile_keys);
  if (p.block_sparse) return sparse_dq_rank(p, w, tiles, head, m, lane);
  const int rank = tiles.rank_ascending(w.n);
  return p.dq_descending ? tiles.count() - 1 - rank : rank;
}

/// dq_turn for the dense masks without a left window or sinks (full, causal, right-bounded windows): the KV tiles
/// that add to a query tile are [0, end_tiles), so the turn is w.n ascending and end_tiles - 1 - w.n descending, in a
/// few 32-bit operations (the dQ writer warp computes a turn every step at 24 registers; dq_turn otherwise).
__device__ __forceinline__ int dq_turn_fast(const BwdParams& p, const BwdKvWork& w, const SequenceMask& mask, int head,
                                            int m, int t0, int block_m, int lane) {
  if (p.block_sparse || mask.window_left >= 0 || mask.sinks > 0) return dq_turn(p, w, mask, head, m, t0, block_m, lane);
  if (!p.dq_descending) return w.n;
  const int sq = static_cast<int>(mask.sq), sk = static_cast<int>(mask.sk);
  const int last_row = min(t0 + block_m, sq) - 1;
  int end = mask.window_right >= 0 ? last_row + sk - sq + static_cast<int>(mask.window_right) + 1 : sk;  // key_end
  end = end < 0 ? 0 : (end > sk ? sk : end);
  return (end + p.tile_keys - 1) / p.tile_keys - 1 - w.n;
}

}  // namespace omniattn::detail::cuda
