#pragma once
// How the CPU kernels walk a block-sparse mask: the key chunks of a query tile (listed KV blocks only, cut
// to the kernel's key block), query tiles that never straddle a mask query block, and the element rule of
// partial blocks on a score tile. Without a mask the same walks are the dense ones.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/problem.hpp"

namespace omniattn::detail::cpu {

/// Query tiles are multiples of this many rows (a multiple of every SIMD target's f32 lanes) except where a
/// sequence or a mask block ends.
constexpr int64_t kTileLanes = 16;

/// Calls fn(j0, n_keys, element_masked) for the key chunks (at most `chunk` keys each) that query rows
/// [q0, q0 + rows) of (b, h) may see: all keys below `key_stop` without a mask; the listed KV blocks with
/// one (rows then lie in one mask query block). Keys past the sequence's k_len are cut off.
template <class Fn>
void for_each_key_chunk(const Problem& p, int64_t b, int64_t h, int64_t q0, int64_t key_stop, int64_t chunk, Fn&& fn) {
  const int64_t sk = p.k_len[b];
  if (!p.sparse) {
    for (int64_t j0 = 0; j0 < key_stop; j0 += chunk) fn(j0, std::min(chunk, sk - j0), false);
    return;
  }
  const SparseMask& m = *p.sparse;
  for_each_kv_block(m, b, h, q0 / m.block_q, [&](int64_t kb, bool partial) {
    const int64_t end = std::min({(kb + 1) * m.block_k, sk, key_stop});
    for (int64_t j0 = kb * m.block_k; j0 < end; j0 += chunk) fn(j0, std::min(chunk, end - j0), partial);
  });
}

/// Calls fn(i0, rows, element_masked) for the query chunks (at most `chunk` rows each) of (b, h) that may
/// see keys [j0, j0 + n_keys): every query without a mask; with one, the query blocks that list the keys'
/// KV block (the keys then lie in one mask KV block).
template <class Fn>
void for_each_query_chunk(const Problem& p, int64_t b, int64_t h, int64_t j0, int64_t chunk, Fn&& fn) {
  const int64_t sq = p.q_len[b];
  if (!p.sparse) {
    for (int64_t i0 = 0; i0 < sq; i0 += chunk) fn(i0, std::min(chunk, sq - i0), false);
    return;
  }
  const SparseMask& m = *p.sparse;
  for_each_q_block(m, b, h, j0 / m.block_k, [&](int64_t qb, bool partial) {
    const int64_t end = std::min((qb + 1) * m.block_q, sq);
    for (int64_t i0 = qb * m.block_q; i0 < end; i0 += chunk) fn(i0, std::min(chunk, end - i0), partial);
  });
}

/// Tiles of at most `max_rows` over [0, length) that never cross a multiple of `boundary` (a mask block),
/// each a multiple of `lanes` except at a boundary: fn(start, rows). Balanced: a 128-block with 96-row
/// tiles gives 64 + 64, not 96 + 32.
template <class Fn>
void for_each_tile(int64_t length, int64_t boundary, int64_t max_rows, int64_t lanes, Fn&& fn) {
  for (int64_t start = 0; start < length; start += boundary) {
    const int64_t span = std::min(boundary, length - start);
    const int64_t pieces = (span + max_rows - 1) / max_rows;
    const int64_t size = std::min(max_rows, ((span + pieces - 1) / pieces + lanes - 1) / lanes * lanes);
    for (int64_t s = 0; s < span; s += size) fn(start + s, std::min(size, span - s));
  }
}

/// -inf where the partial-block element rule hides key j0 + j from query i0 + i, for i < rows, j < n_keys;
/// score (i, j) sits at s[i * query_stride + j * key_stride].
inline void mask_elements(const Problem& p, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t j0, int64_t n_keys,
                          float* s, int64_t query_stride, int64_t key_stride) {
  const SparseMask& m = *p.sparse;
  const int64_t sq = p.q_len[b], sk = p.k_len[b];
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n_keys; ++j)
      if (!m.element_visible(b, h, i0 + i, j0 + j, sq, sk))
        s[i * query_stride + j * key_stride] = -std::numeric_limits<float>::infinity();
}

}  // namespace omniattn::detail::cpu
