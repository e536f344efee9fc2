// Validation of a BlockMaskView: geometry, tensor layout, CSR consistency, the transposed lists, and the
// element mask's arrays and grid. O(number of blocks + tokens).
#include "sparse/mask_checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/validate.hpp"

namespace omniattn::detail {
namespace {

// A contiguous i32 tensor on the mask's device with exactly `shape`.
void check_tensor(const TensorView& t, const std::string& name, std::initializer_list<int64_t> shape,
                  Device device) {
  require_defined(t, name.c_str());
  require_dtype(t, name.c_str(), DType::i32);
  require_device(t, name.c_str(), device);
  require_shape(t, name.c_str(), shape);
  int64_t stride = 1;
  for (int d = t.ndim - 1; d >= 0 && t.numel() > 0; --d) {
    OMNI_REQUIRE(t.shape[d] <= 1 || t.stride[d] == stride, name, "a contiguous tensor",
            fmt::format("stride {} at dim {}", t.stride[d], d));
    stride *= t.shape[d];
  }
}

// One CSR list: counts match offsets, offsets start at 0 and end at the index count, indices strictly
// increasing within a row and in [0, columns).
void check_list(const BlockList& l, const std::string& name, int64_t batch, int64_t heads, int64_t rows,
                int64_t columns, Device device) {
  const int64_t n = batch * heads * rows;
  check_tensor(l.num_blocks, name + ".num_blocks", {batch, heads, rows}, device);
  check_tensor(l.offsets, name + ".offsets", {n + 1}, device);
  const int32_t* off = l.offsets.ptr<const int32_t>();
  const int32_t* num = l.num_blocks.ptr<const int32_t>();
  OMNI_REQUIRE(off[0] == 0, name + ".offsets", "first entry 0", std::to_string(off[0]));
  for (int64_t r = 0; r < n; ++r) {
    OMNI_REQUIRE(off[r + 1] >= off[r], name + ".offsets", "non-decreasing entries",
            fmt::format("{} after {} at row {}", off[r + 1], off[r], r));
    OMNI_REQUIRE(num[r] == off[r + 1] - off[r], name + ".num_blocks",
            fmt::format("offsets[{0}+1] - offsets[{0}] = {1} at row {0}", r, off[r + 1] - off[r]),
            std::to_string(num[r]));
  }
  check_tensor(l.indices, name + ".indices", {off[n]}, device);
  const int32_t* idx = l.indices.ptr<const int32_t>();
  for (int64_t r = 0; r < n; ++r)
    for (int32_t e = off[r]; e < off[r + 1]; ++e) {
      OMNI_REQUIRE(idx[e] >= 0 && idx[e] < columns, name + ".indices",
              fmt::format("block indices in [0, {}) (row {})", columns, r), std::to_string(idx[e]));
      if (e > off[r] && idx[e] <= idx[e - 1])  // (the message reads idx[e - 1]: only formatted when it exists)
        OMNI_REQUIRE(false, name + ".indices", fmt::format("strictly increasing indices in row {}", r),
                fmt::format("{} after {}", idx[e], idx[e - 1]));
    }
}

// Rows of `a` and `b` share no index.
void check_disjoint(const BlockList& a, const BlockList& b, const std::string& name, int64_t n) {
  const int32_t *ao = a.offsets.ptr<const int32_t>(), *ai = a.indices.ptr<const int32_t>();
  const int32_t *bo = b.offsets.ptr<const int32_t>(), *bi = b.indices.ptr<const int32_t>();
  for (int64_t r = 0; r < n; ++r) {
    int32_t x = ao[r], y = bo[r];
    while (x < ao[r + 1] && y < bo[r + 1]) {
      OMNI_REQUIRE(ai[x] != bi[y], name, fmt::format("a block listed as partial or full, not both (row {})", r),
              fmt::format("block {} in both", ai[x]));
      if (ai[x] < bi[y]) ++x;
      else ++y;
    }
  }
}

// `t` is exactly the transpose of `l` (rows of l: [batch, heads, rows]; of t: [batch, heads, columns]).
void check_transpose(const BlockList& l, const BlockList& t, const std::string& name, int64_t bh, int64_t rows,
                     int64_t columns) {
  const int32_t *lo = l.offsets.ptr<const int32_t>(), *li = l.indices.ptr<const int32_t>();
  const int32_t *to = t.offsets.ptr<const int32_t>(), *ti = t.indices.ptr<const int32_t>();
  OMNI_REQUIRE(lo[bh * rows] == to[bh * columns], name, fmt::format("{} entries (the transpose's)", lo[bh * rows]),
          std::to_string(to[bh * columns]));
  std::vector<int32_t> cursor(static_cast<size_t>(bh * columns));
  for (int64_t c = 0; c < bh * columns; ++c) cursor[static_cast<size_t>(c)] = to[c];
  // Walking l row by row in increasing order fills each transposed row in increasing order.
  for (int64_t s = 0; s < bh; ++s)
    for (int64_t r = 0; r < rows; ++r)
      for (int32_t e = lo[s * rows + r]; e < lo[s * rows + r + 1]; ++e) {
        const int64_t c = s * columns + li[e];
        int32_t& at = cursor[static_cast<size_t>(c)];
        OMNI_REQUIRE(at < to[c + 1] && ti[at] == r, name,
                fmt::format("the transpose of the kv lists (block row {} listing column {})", r, li[e]),
                at < to[c + 1] ? fmt::format("row {} at that place", ti[at]) : std::string("a shorter row"));
        ++at;
      }
}

void check_array(const I32Array& a, const std::string& name, int64_t size) {
  OMNI_REQUIRE(a.size == size && (a.data != nullptr || size == 0), name, fmt::format("{} entries", size),
          fmt::format("{} entries{}", a.size, a.data ? "" : " (null data)"));
}

void check_element(const ElementMask& e, const BlockMaskView& m, const std::string& name) {
  OMNI_REQUIRE(e.window_left >= -1, name + ".window_left", ">= -1 (-1 = unbounded)", std::to_string(e.window_left));
  OMNI_REQUIRE(e.window_right >= -1, name + ".window_right", ">= -1 (-1 = unbounded)", std::to_string(e.window_right));
  OMNI_REQUIRE(e.sinks >= 0, name + ".sinks", ">= 0", std::to_string(e.sinks));
  OMNI_REQUIRE(e.prefix >= 0, name + ".prefix", ">= 0", std::to_string(e.prefix));
  if (!e.head_windows.empty() || e.head_windows.size) {
    check_array(e.head_windows, name + ".head_windows", 3 * m.heads);
    for (int64_t h = 0; h < m.heads; ++h) {
      const int32_t* w = e.head_windows.data + 3 * h;
      OMNI_REQUIRE(w[0] >= -1 && w[1] >= -1 && w[2] >= 0, name + ".head_windows",
              "(left >= -1, right >= -1, sinks >= 0) per head", fmt::format("({}, {}, {}) at head {}", w[0], w[1], w[2], h));
    }
  }
  if (!e.q_document.empty() || !e.k_document.empty()) {
    check_array(e.q_document, name + ".q_document", m.q_tokens);
    check_array(e.k_document, name + ".k_document", m.k_tokens);
  }
  const GridMask& g = e.grid;
  const bool grid = g.kind != GridMask::Kind::none;
  if (grid) {
    OMNI_REQUIRE(g.ndim >= 1 && g.ndim <= 3, name + ".grid.ndim", "1, 2 or 3", std::to_string(g.ndim));
    for (int a = 0; a < g.ndim; ++a) {
      const std::string axis = fmt::format("{}.grid axis {}", name, a);
      OMNI_REQUIRE(g.shape[a] >= 1, axis, "shape >= 1", std::to_string(g.shape[a]));
      if (g.kind != GridMask::Kind::neighborhood) continue;
      OMNI_REQUIRE(g.kernel[a] >= 1 && g.dilation[a] >= 1 && g.kernel[a] * g.dilation[a] <= g.shape[a], axis,
              fmt::format("kernel >= 1, dilation >= 1, kernel * dilation <= shape {}", g.shape[a]),
              fmt::format("kernel {}, dilation {}", g.kernel[a], g.dilation[a]));
      OMNI_REQUIRE(g.stride[a] >= 1 && g.stride[a] <= g.kernel[a], axis, fmt::format("stride in [1, kernel {}]", g.kernel[a]),
              std::to_string(g.stride[a]));
    }
    OMNI_REQUIRE(g.tokens() == m.q_tokens && g.tokens() == m.k_tokens, name + ".grid",
            fmt::format("{} tokens (q_tokens = k_tokens of the mask)", m.q_tokens),
            fmt::format("{} tokens (k_tokens {})", g.tokens(), m.k_tokens));
  }
  if (!e.token_order.empty() || e.token_order.size) {
    OMNI_REQUIRE(grid, name + ".token_order", "a grid rule that uses it", "no grid");
    check_array(e.token_order, name + ".token_order", m.q_tokens);
    std::vector<char> seen(static_cast<size_t>(m.q_tokens), 0);
    for (int64_t i = 0; i < m.q_tokens; ++i) {
      const int32_t t = e.token_order.data[i];
      OMNI_REQUIRE(t >= 0 && t < m.q_tokens && !seen[static_cast<size_t>(t)], name + ".token_order",
              fmt::format("a permutation of [0, {})", m.q_tokens), fmt::format("{} at position {}", t, i));
      seen[static_cast<size_t>(t)] = 1;
    }
  }
  if (!e.grid_table.empty() || e.grid_table.size) {
    // The kernels read it at every position of the sequences and trust its contents: exactly the derived table.
    OMNI_REQUIRE(grid, name + ".grid_table", "a grid rule that uses it", "no grid");
    const std::vector<int32_t> want = make_grid_table(g, e.token_order);
    OMNI_REQUIRE(!want.empty(), name + ".grid_table", "none (the grid's packed coordinates need more than 32 bits)",
            fmt::format("{} entries", e.grid_table.size));
    check_array(e.grid_table, name + ".grid_table", static_cast<int64_t>(want.size()));
    const auto [at, given] = std::mismatch(want.begin(), want.end(), e.grid_table.data);
    OMNI_REQUIRE(at == want.end(), name + ".grid_table", "make_grid_table(grid, token_order)",
            fmt::format("{} at entry {} instead of {}", *given, at - want.begin(), *at));
  }
}

}  // namespace

void validate_block_mask(const BlockMaskView& m, const std::string& name) {
  OMNI_REQUIRE(m.block_q == 64 || m.block_q == 128, name + ".block_q", "64 or 128", std::to_string(m.block_q));
  OMNI_REQUIRE(m.block_k == 64 || m.block_k == 128, name + ".block_k", "64 or 128", std::to_string(m.block_k));
  OMNI_REQUIRE(m.batch >= 1, name + ".batch", ">= 1", std::to_string(m.batch));
  OMNI_REQUIRE(m.heads >= 1, name + ".heads", ">= 1", std::to_string(m.heads));
  OMNI_REQUIRE(m.q_tokens >= 0 && m.q_tokens <= INT32_MAX, name + ".q_tokens", "in [0, 2^31)", std::to_string(m.q_tokens));
  OMNI_REQUIRE(m.k_tokens >= 0 && m.k_tokens <= INT32_MAX, name + ".k_tokens", "in [0, 2^31)", std::to_string(m.k_tokens));
  const Device dev = m.device();
  OMNI_REQUIRE(dev.is_cpu(), name, "a CPU view for validation (copy CUDA masks to the host)", to_string(dev));
  const int64_t qb = m.q_blocks(), kb = m.k_blocks(), bh = m.batch * m.heads;
  check_list(m.kv_partial, name + ".kv_partial", m.batch, m.heads, qb, kb, dev);
  check_list(m.kv_full, name + ".kv_full", m.batch, m.heads, qb, kb, dev);
  check_list(m.q_partial, name + ".q_partial", m.batch, m.heads, kb, qb, dev);
  check_list(m.q_full, name + ".q_full", m.batch, m.heads, kb, qb, dev);
  check_disjoint(m.kv_partial, m.kv_full, name + ".kv_full", bh * qb);
  check_transpose(m.kv_partial, m.q_partial, name + ".q_partial", bh, qb, kb);
  check_transpose(m.kv_full, m.q_full, name + ".q_full", bh, qb, kb);
  check_element(m.element, m, name + ".element");
  if (!m.host_kv_load.empty() || m.host_kv_load.size) {
    const std::vector<int32_t> want = kv_block_load(m);
    check_array(m.host_kv_load, name + ".host_kv_load", kb);
    const auto [at, given] = std::mismatch(want.begin(), want.end(), m.host_kv_load.data);
    OMNI_REQUIRE(at == want.end(), name + ".host_kv_load", "kv_block_load of the lists",
            fmt::format("{} at KV block {} instead of {}", *given, at - want.begin(), *at));
  }
}

}  // namespace omniattn::detail

namespace omniattn {
void validate(const BlockMaskView& mask) { detail::validate_block_mask(mask, "block_mask"); }
}  // namespace omniattn
