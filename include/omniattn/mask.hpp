#pragma once
/// @file mask.hpp
/// Block-sparse masks (FlexAttention style): per (batch, mask head, query block) the sorted KV blocks a
/// query block attends to, split into full blocks (no per-element mask) and partial blocks (an element
/// mask decides each query-key pair). The layout is device-agnostic int32 CSR, read as is by every kernel;
/// docs/sparse.md describes it field by field.
///
/// Semantics, for query i and key j of sequence b, query head h (sequence-local positions):
///   visible(i, j) = AttentionOptions' mask (causal/window/sinks, as without a BlockMask)
///                   AND block (i / block_q, j / block_k) is listed for (b, mask head of h)
///                   AND (the block is full OR (element.visible(...) AND host_element_mask(...)))
/// A row with no visible key outputs 0 and LSE = -inf.
#include <bit>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "omniattn/tensor.hpp"

#if defined(__CUDACC__)
#define OMNIATTN_HD __host__ __device__ inline
#else
#define OMNIATTN_HD inline
#endif

namespace omniattn {

/// A read-only int32 array on the device of the mask that refers to it (empty when data is null).
struct I32Array {
  const int32_t* data = nullptr;
  int64_t size = 0;
  OMNIATTN_HD bool empty() const { return data == nullptr || size == 0; }
};

/// Token grids (images, videos) for neighborhood and axial attention. Tokens are numbered row-major over
/// `shape` (the last axis fastest) unless an ElementMask::token_order permutes them.
struct GridMask {
  enum class Kind : uint8_t { none, neighborhood, axial };
  Kind kind = Kind::none;
  int ndim = 1;                      ///< 1, 2 or 3 axes
  int64_t shape[3] = {1, 1, 1};      ///< tokens per axis
  int64_t kernel[3] = {1, 1, 1};     ///< neighborhood: window size per axis (1 <= kernel * dilation <= shape)
  int64_t dilation[3] = {1, 1, 1};   ///< neighborhood: only tokens of the same residue mod dilation interact
  int64_t stride[3] = {1, 1, 1};     ///< neighborhood: queries in groups of `stride` share one window (<= kernel)
  bool causal[3] = {false, false, false};  ///< per axis: keys at coordinates <= the query's only

  OMNIATTN_HD int64_t tokens() const {
    int64_t n = 1;
    for (int a = 0; a < ndim; ++a) n *= shape[a];
    return n;
  }
  friend bool operator==(const GridMask&, const GridMask&) = default;

  /// Packed coordinates, the form of ElementMask::grid_table: one 32-bit word per token, axis a in a field of
  /// bit_width(shape[a] - 1) bits with a guard bit above it, axis ndim - 1 lowest. Fields hold the coordinate
  /// (axial) or its rank in dilation-group order (neighborhood: make_grid_table).
  struct KeyLayout {
    uint32_t guard = 0;             ///< the guard bit of every field; 0: the fields need more than 32 bits
    uint32_t field[3] = {0, 0, 0};  ///< the value bits of each axis (0 past ndim)

    /// Whether every field of `key` lies between those of lo and hi; hi_g is hi with the guard bits set. In
    /// (key | guard) - lo a field keeps its guard bit iff key_a >= lo_a, in hi_g - key iff key_a <= hi_a: a field's
    /// difference stays within its bits and its guard, so no borrow reaches the next field.
    OMNIATTN_HD bool in_box(uint32_t key, uint32_t lo, uint32_t hi_g) const {
      return (((key | guard) - lo) & (hi_g - key) & guard) == guard;
    }
    /// Axial: whether `key` and `query` differ in at most one field a, and there key_a <= query_a when axis a is
    /// causal (causal[a]: field[a] for a causal axis, else 0; 0 past ndim, where the test is key == query).
    OMNIATTN_HD bool in_line(uint32_t key, uint32_t query, const uint32_t (&causal)[3]) const {
      const uint32_t diff = key ^ query;
      bool any = false;
      for (int a = 0; a < 3; ++a) any |= (diff & ~field[a]) == 0 && (key & causal[a]) <= (query & causal[a]);
      return any;
    }
  };
  OMNIATTN_HD KeyLayout key_layout() const {
    KeyLayout k;
    int shift = 0;
    for (int a = 2; a >= 0; --a) {  // all 3 axes, unrolled: kernels keep field[] in registers, not local memory
      if (a >= ndim) continue;
      const uint64_t top = static_cast<uint64_t>(shape[a] - 1);
#if defined(__CUDA_ARCH__)
      const int bits = 64 - __clzll(static_cast<long long>(top));
#else
      const int bits = static_cast<int>(std::bit_width(top));
#endif
      if (shift + bits + 1 > 32) return {};
      k.field[a] = static_cast<uint32_t>(((uint64_t{1} << bits) - 1) << shift);
      k.guard |= static_cast<uint32_t>(uint64_t{1} << (shift + bits));
      shift += bits + 1;
    }
    return k;
  }

  /// NATTEN's neighborhood along one axis: query coordinate x, key coordinate y.
  /// Within a dilation group (x ≡ y mod dilation), coordinates are x' = x / dilation in a group of
  /// length n = ceil((L - x mod dilation) / dilation). The stride group of x' has a leader (its centre,
  /// the right one when the stride is even; its last query when causal) and the window follows the leader:
  ///   non-causal: [c - k/2, c - k/2 + k - 1] with c = leader clamped to [k/2, n - 1 - (k - 1 - k/2)]
  ///   causal:     keys y' <= x' with leader - y' < k
  OMNIATTN_HD bool axis_visible(int a, int64_t x, int64_t y) const {
    const int64_t d = dilation[a], k = kernel[a], s = stride[a];
    if (x % d != y % d) return false;
    const int64_t n = (shape[a] - x % d + d - 1) / d, xq = x / d, yk = y / d;
    if (causal[a]) {
      int64_t leader = (xq / s) * s + s - 1;
      if (leader > n - 1) leader = n - 1;
      return yk <= xq && leader - yk < k;
    }
    int64_t leader = (xq / s) * s + s / 2;
    if (leader > n - 1) leader = n - 1;
    const int64_t left = k / 2, right = k - 1 - left;
    int64_t centre = leader < left ? left : leader;
    if (centre > n - 1 - right) centre = n - 1 - right;
    return yk >= centre - left && yk <= centre + right;
  }

  /// Query token q and key token t (grid indices, row-major).
  OMNIATTN_HD bool visible(int64_t q, int64_t t) const {
    int64_t x[3] = {0, 0, 0}, y[3] = {0, 0, 0};
    for (int a = ndim - 1; a >= 0; --a) {
      x[a] = q % shape[a];
      y[a] = t % shape[a];
      q /= shape[a];
      t /= shape[a];
    }
    if (kind == Kind::neighborhood) {
      for (int a = 0; a < ndim; ++a)
        if (!axis_visible(a, x[a], y[a])) return false;
      return true;
    }
    if (kind == Kind::axial) {  // same token line along some axis (and not after the query on a causal axis)
      int differ = 0, axis = 0;
      for (int a = 0; a < ndim; ++a)
        if (x[a] != y[a]) ++differ, axis = a;
      return differ == 0 || (differ == 1 && (!causal[axis] || y[axis] <= x[axis]));
    }
    return true;
  }
};

/// The element mask of partial blocks: plain data and a host/device predicate, so the CPU and GPU
/// kernels evaluate the same rule. Every condition that is set must hold (AND); the default allows all.
/// Arrays live on the device of the BlockMask's index tensors.
struct ElementMask {
  /// Window relative to the bottom-right diagonal d = i + sk - sq, as AttentionOptions: visible iff
  /// j <= d + window_right (when >= 0) and (j >= d - window_left (when >= 0) or j < sinks).
  int64_t window_left = -1, window_right = -1, sinks = 0;
  /// Keys j < prefix are visible to every query whatever the window says (prefix-LM).
  int64_t prefix = 0;
  /// Optional i32 [mask heads, 3]: (window_left, window_right, sinks) per mask head, replacing the scalars
  /// (per-head heterogeneous windows, MoA).
  I32Array head_windows;
  /// Optional i32 [q tokens] and [k tokens]: document id per token; queries see keys of their own document.
  I32Array q_document, k_document;
  /// Neighborhood / axial rule on a token grid (self-attention: q tokens = k tokens = grid tokens).
  GridMask grid;
  /// Optional i32 [tokens]: grid index of the token at each sequence position (a tile or Hilbert order),
  /// used by `grid` for both queries and keys.
  I32Array token_order;
  /// Optional, the GPU kernels' form of `grid` and `token_order`: make_grid_table(grid, token_order) (BlockMask
  /// builds it). The CPU backends ignore it; validate() requires a set one to be exactly that table.
  I32Array grid_table;

  /// visible()'s window / sinks / prefix part for query i (0 <= i < sq) as key ranges within [0, sk]: key j < sk
  /// passes it iff j < front or begin <= j < end. For rules evaluated per row (generators, forward kernels).
  struct RowRanges {
    int64_t front;       ///< [0, front): sinks (bounded by the window's end) and the prefix
    int64_t begin, end;  ///< the window
  };
  OMNIATTN_HD RowRanges row_ranges(int64_t head, int64_t i, int64_t sq, int64_t sk) const {
    int64_t left = window_left, right = window_right, sink = sinks;
    if (!head_windows.empty()) {
      left = head_windows.data[3 * head];
      right = head_windows.data[3 * head + 1];
      sink = head_windows.data[3 * head + 2];
    }
    const int64_t d = i + sk - sq;  // < sk; windows past [0, sk] are cut before any sum (no overflow)
    const int64_t end = right < 0 || right >= sk - d ? sk : (d + right + 1 > 0 ? d + right + 1 : 0);
    const int64_t begin = left < 0 || left >= d ? 0 : d - left;
    const int64_t sink_end = sink < end ? sink : end, prefix_end = prefix < sk ? prefix : sk;
    return {sink_end > prefix_end ? sink_end : prefix_end, begin, end};
  }
  /// Whether the rule has parts beyond row_ranges (documents, grids), and those parts for the pair (i, j)
  /// (with_grid = false: documents only, for kernels that decide the grid from grid_table).
  OMNIATTN_HD bool has_pair_rule() const { return !q_document.empty() || grid.kind != GridMask::Kind::none; }
  OMNIATTN_HD bool pair_visible(int64_t i, int64_t j, bool with_grid = true) const {
    if (!q_document.empty() && q_document.data[i] != k_document.data[j]) return false;
    if (with_grid && grid.kind != GridMask::Kind::none) {
      const int64_t gi = token_order.empty() ? i : token_order.data[i];
      const int64_t gj = token_order.empty() ? j : token_order.data[j];
      if (!grid.visible(gi, gj)) return false;
    }
    return true;
  }

  /// Whether key j is visible to query i (sequence-local) of mask head `head`, in a sequence of sq queries
  /// and sk keys. Not written with the helpers above on purpose: the sm_80 backward inlines it at its register
  /// limit, and the rewrite made it spill (docs/sparse.md).
  OMNIATTN_HD bool visible(int64_t head, int64_t i, int64_t j, int64_t sq, int64_t sk) const {
    int64_t left = window_left, right = window_right, sink = sinks;
    if (!head_windows.empty()) {
      left = head_windows.data[3 * head];
      right = head_windows.data[3 * head + 1];
      sink = head_windows.data[3 * head + 2];
    }
    const int64_t d = i + sk - sq;
    const bool in_window = (right < 0 || j <= d + right) && (left < 0 || j >= d - left || j < sink);
    if (!in_window && j >= prefix) return false;
    if (!q_document.empty() && q_document.data[i] != k_document.data[j]) return false;
    if (grid.kind != GridMask::Kind::none) {
      const int64_t gi = token_order.empty() ? i : token_order.data[i];
      const int64_t gj = token_order.empty() ? j : token_order.data[j];
      if (!grid.visible(gi, gj)) return false;
    }
    return true;
  }
};

/// ElementMask::grid_table of a grid rule, on the host: key(t), the packed coordinates of token t
/// (GridMask::key_layout), per sequence position p of the T = grid.tokens() positions. Axial: T entries,
/// key(token_order[p]) (key(p) without an order). Neighborhood: T rows of 3, (key, lo, hi) with lo and hi the lowest
/// and highest packed key of p's window, so that key j is visible to query i iff every field of key(j) lies between
/// those of lo(i) and hi(i). A neighborhood field holds the rank of the coordinate y in its axis ordered by dilation
/// group (y mod dilation), then y: one group's window is one interval. Empty when the grid or order is invalid or
/// the fields do not fit 32 bits (kernels then evaluate GridMask::visible per score).
std::vector<int32_t> make_grid_table(const GridMask& grid, const I32Array& token_order);

/// make_grid_table's table as the kernels read it (a set ElementMask::grid_table): per key position its packed
/// coordinates, per query position what a key is compared with, and the comparison.
struct GridTableReader {
  GridMask::KeyLayout layout;
  uint32_t causal[3] = {0, 0, 0};  ///< axial: the fields of causal axes (KeyLayout::in_line)
  const uint32_t* table = nullptr;
  bool axial = false;

  /// A query's side of the test: its window's lowest and highest packed key, hi with the guard bits set
  /// (neighborhood), or its own packed coordinates in lo (axial).
  struct Query {
    uint32_t lo = 0, hi = 0;
  };

  OMNIATTN_HD static GridTableReader of(const ElementMask& e) {
    GridTableReader t;
    t.layout = e.grid.key_layout();
    for (int a = 0; a < 3; ++a) t.causal[a] = e.grid.causal[a] ? t.layout.field[a] : 0u;
    t.table = reinterpret_cast<const uint32_t*>(e.grid_table.data);
    t.axial = e.grid.kind == GridMask::Kind::axial;
    return t;
  }
  /// Axial: [tokens] keys; neighborhood: [tokens][key, lo, hi].
  OMNIATTN_HD uint32_t key(int64_t j) const { return table[(axial ? 1 : 3) * j]; }
  OMNIATTN_HD Query query(int64_t i) const {
    if (axial) return {table[i], 0u};
    return {table[3 * i + 1], table[3 * i + 2] | layout.guard};
  }
  template <bool kAxial>
  OMNIATTN_HD bool visible_as(uint32_t key, const Query& q) const {
    if constexpr (kAxial) return layout.in_line(key, q.lo, causal);
    else return layout.in_box(key, q.lo, q.hi);
  }
  OMNIATTN_HD bool visible(uint32_t key, const Query& q) const {
    return axial ? visible_as<true>(key, q) : visible_as<false>(key, q);
  }
};

/// One CSR list of blocks per row (a row is (batch, mask head, query or KV block)), int32, contiguous:
///   num_blocks [batch, heads, rows]       blocks in each row
///   offsets    [batch * heads * rows + 1] where each row starts in `indices` (offsets[r+1] - offsets[r] =
///                                         num_blocks[r]; offsets[0] = 0)
///   indices    [offsets[last]]            the row's block indices, strictly increasing
struct BlockList {
  TensorView num_blocks, offsets, indices;
};

/// A non-owning view of a block mask: what attention_forward/backward take (AttentionOptions::block_mask)
/// and what the kernels read. All tensors are contiguous int32 on one device.
struct BlockMaskView {
  int64_t batch = 1;     ///< 1 (shared by all sequences) or B
  int64_t heads = 1;     ///< 1 (shared), Hkv (one per KV head: its query heads share it) or Hq
  int64_t q_tokens = 0;  ///< query positions covered (the longest sequence's)
  int64_t k_tokens = 0;  ///< key positions covered (the longest sequence's stored keys)
  int64_t block_q = 128, block_k = 128;  ///< 64 or 128 each
  BlockList kv_partial;  ///< per query block: KV blocks whose pairs the element mask decides
  BlockList kv_full;     ///< per query block: KV blocks that are entirely visible (no element mask)
  BlockList q_partial;   ///< per KV block: the transpose of kv_partial (the backward's dK/dV loop)
  BlockList q_full;      ///< per KV block: the transpose of kv_full
  ElementMask element;   ///< evaluated on partial blocks
  /// CPU backends only: an extra element rule on partial blocks, ANDed with `element`;
  /// arguments (batch, query head, query position, key position), sequence-local.
  std::function<bool(int64_t, int64_t, int64_t, int64_t)> host_element_mask;
  /// Optional, host memory even for a CUDA view: per KV block, the most query blocks that list it in any
  /// (batch, head) row (kv_block_load). DeviceBlockMask::upload fills it, so that the CUDA backward can cut the
  /// walks of KV blocks far above the mean (sinks, prefix columns) over several CTAs without reading the device
  /// lists. Empty: the backward computes it from lists on the host, or does not split a CUDA view's walks. When
  /// set it must equal kv_block_load of the lists (validate checks it).
  I32Array host_kv_load;
  /// Set by DeviceBlockMask::view() (its lists were validated when uploaded): attention calls then skip the
  /// per-call device-to-host copy that validates a CUDA view's indices, and check only its geometry. Setting it
  /// on a view that was not validated makes bad indices undefined behaviour.
  bool validated = false;

  int64_t q_blocks() const { return (q_tokens + block_q - 1) / block_q; }
  int64_t k_blocks() const { return (k_tokens + block_k - 1) / block_k; }
  Device device() const { return kv_partial.offsets.device; }
};

/// Checks every field of a view on the CPU (CUDA views: copy to the host first): geometry, shapes, dtypes,
/// contiguity, counts against offsets, indices in range, strictly increasing, full and partial disjoint,
/// the q lists exactly the transpose of the kv lists, and the element mask's arrays and grid.
/// Throws omniattn::Error naming the field, what was expected and what was given.
void validate(const BlockMaskView& mask);

/// Per KV block of a CPU view, the most query blocks that list it (partial or full) in any (batch, head) row.
std::vector<int32_t> kv_block_load(const BlockMaskView& mask);

/// An owning block mask built on the host. view() is valid while the BlockMask lives and is not modified.
class BlockMask {
 public:
  struct Geometry {
    int64_t batch = 1, heads = 1, q_tokens = 0, k_tokens = 0, block_q = 128, block_k = 128;
    int64_t q_blocks() const { return (q_tokens + block_q - 1) / block_q; }
    int64_t k_blocks() const { return (k_tokens + block_k - 1) / block_k; }
  };
  /// What a dense block map holds per (batch, head, query block, KV block).
  enum class Block : uint8_t { skipped = 0, partial = 1, full = 2 };

  BlockMask() = default;
  /// From CSR rows per (batch, head, query block): partial and full KV blocks, each row strictly increasing.
  /// Builds the transposed lists; throws omniattn::Error if anything is inconsistent.
  static BlockMask from_lists(const Geometry& g, std::vector<int32_t> partial_offsets,
                              std::vector<int32_t> partial_indices, std::vector<int32_t> full_offsets,
                              std::vector<int32_t> full_indices, const ElementMask& element = {});
  /// From a dense map [batch, heads, q_blocks, k_blocks] of Block values.
  static BlockMask from_block_map(const Geometry& g, const std::vector<Block>& map, const ElementMask& element = {});
  /// The dense map [batch, heads, q_blocks, k_blocks].
  std::vector<Block> to_block_map() const;

  const Geometry& geometry() const { return geometry_; }
  /// Scalar fields and grid of the element mask (its arrays are set below; view() points at them).
  ElementMask& element() { return element_; }
  const ElementMask& element() const { return element_; }
  void set_head_windows(std::vector<int32_t> windows) { head_windows_ = std::move(windows); }
  void set_documents(std::vector<int32_t> q_document, std::vector<int32_t> k_document) {
    q_document_ = std::move(q_document);
    k_document_ = std::move(k_document);
  }
  void set_token_order(std::vector<int32_t> order);
  const std::vector<int32_t>& token_order() const { return token_order_; }

  /// Listed blocks (partial + full) over all rows, and that over all blocks of the [batch, heads] grid.
  int64_t listed_blocks() const { return static_cast<int64_t>(kv_[0].indices.size() + kv_[1].indices.size()); }
  double density() const;

  /// A CPU view of this mask (with `host_element_mask` empty).
  BlockMaskView view() const;

 private:
  struct Lists {  // one BlockList's storage
    std::vector<int32_t> num_blocks, offsets, indices;
  };
  Geometry geometry_;
  Lists kv_[2], q_[2];  // [0] partial, [1] full
  ElementMask element_;
  std::vector<int32_t> head_windows_, q_document_, k_document_, token_order_;
  // make_grid_table of table_grid_ and token_order_; view() hands it out while element_.grid is still that grid
  // (element() may change it).
  std::vector<int32_t> grid_table_;
  GridMask table_grid_;
  void build_grid_table();
};

}  // namespace omniattn
