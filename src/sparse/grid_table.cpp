// make_grid_table: a grid rule as packed coordinates per position and, for neighborhoods, each query's window as
// the lowest and highest packed key, so that a kernel decides a pair with a few integer compares instead of
// decoding grid coordinates with divisions per score (GridMask::visible). O(tokens · ndim).
#include <algorithm>
#include <bit>
#include <vector>

#include "omniattn/mask.hpp"

namespace omniattn {
namespace {

// Validation's constraints (mask_checks.cpp), checked without overflow: nothing below divides by zero or overflows.
bool valid_grid(const GridMask& g) {
  if (g.kind == GridMask::Kind::none || g.ndim < 1 || g.ndim > 3) return false;
  int64_t tokens = 1;
  for (int a = 0; a < g.ndim; ++a) {
    if (g.shape[a] < 1 || g.shape[a] > INT32_MAX || (tokens *= g.shape[a]) > INT32_MAX) return false;
    if (g.kind == GridMask::Kind::neighborhood &&
        !(g.kernel[a] >= 1 && g.dilation[a] >= 1 && g.kernel[a] <= g.shape[a] && g.dilation[a] <= g.shape[a] &&
          g.kernel[a] * g.dilation[a] <= g.shape[a] && g.stride[a] >= 1 && g.stride[a] <= g.kernel[a]))
      return false;
  }
  return true;
}

// Along axis a of a neighborhood: the rank of coordinate x (its dilation group's offset + x / dilation), and the
// ranks of the first and last key that x sees as a query (GridMask::axis_visible as one interval).
struct AxisKeys {
  int64_t rank, first, last;
};
AxisKeys neighborhood_axis(const GridMask& g, int a, int64_t x) {
  const int64_t L = g.shape[a], d = g.dilation[a], k = g.kernel[a], s = g.stride[a];
  const int64_t r = x % d, xq = x / d, n = (L - r + d - 1) / d;
  // Groups r' < L mod d hold L / d + 1 coordinates, the others L / d.
  const int64_t offset = r * (L / d) + std::min(r, L % d);
  int64_t first, last;
  if (g.causal[a]) {
    const int64_t leader = std::min((xq / s) * s + s - 1, n - 1);
    first = std::max<int64_t>(leader - k + 1, 0);  // keys y' <= xq with leader - y' < k
    last = xq;
  } else {
    const int64_t leader = std::min((xq / s) * s + s / 2, n - 1);
    const int64_t left = k / 2, right = k - 1 - left;
    const int64_t centre = std::min(std::max(leader, left), n - 1 - right);  // k <= n: the window fits the group
    first = centre - left;
    last = centre + right;
  }
  return {offset + xq, offset + first, offset + last};
}

}  // namespace

std::vector<int32_t> make_grid_table(const GridMask& grid, const I32Array& token_order) {
  if (!valid_grid(grid)) return {};
  const GridMask::KeyLayout layout = grid.key_layout();
  if (layout.guard == 0) return {};
  const int64_t tokens = grid.tokens();
  if (!token_order.empty()) {
    if (token_order.size != tokens) return {};
    for (int64_t p = 0; p < tokens; ++p)
      if (token_order.data[p] < 0 || token_order.data[p] >= tokens) return {};
  }
  const bool neighborhood = grid.kind == GridMask::Kind::neighborhood;
  std::vector<int32_t> table(static_cast<size_t>(neighborhood ? 3 * tokens : tokens));
  for (int64_t p = 0; p < tokens; ++p) {
    int64_t t = token_order.empty() ? p : token_order.data[p];
    uint32_t key = 0, first = 0, last = 0;
    int shift = 0;  // of axis a's field: key_layout's order, the last axis lowest
    for (int a = grid.ndim - 1; a >= 0; --a) {
      const int64_t x = t % grid.shape[a];
      t /= grid.shape[a];
      if (neighborhood) {
        const AxisKeys keys = neighborhood_axis(grid, a, x);
        key |= static_cast<uint32_t>(keys.rank) << shift;
        first |= static_cast<uint32_t>(keys.first) << shift;
        last |= static_cast<uint32_t>(keys.last) << shift;
      } else {
        key |= static_cast<uint32_t>(x) << shift;
      }
      shift += std::popcount(layout.field[a]) + 1;
    }
    int32_t* row = table.data() + (neighborhood ? 3 * p : p);
    row[0] = static_cast<int32_t>(key);
    if (neighborhood) {
      row[1] = static_cast<int32_t>(first);
      row[2] = static_cast<int32_t>(last);
    }
  }
  return table;
}

}  // namespace omniattn
