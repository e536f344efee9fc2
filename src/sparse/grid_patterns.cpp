// Grid patterns: NATTEN's neighborhood attention and axial attention, on tokens in grid order or in any
// given order (tile_order, hilbert_order). The visible keys of a query are enumerated per axis, so building
// costs O(tokens × window), not O(tokens²).
#include <fmt/format.h>

#include <algorithm>

#include "core/validate.hpp"
#include "omniattn/sparse.hpp"
#include "sparse/builder.hpp"

namespace omniattn::sparse {
namespace {

using detail::sparse::Intervals;

void check_grid(const Geometry& g, const GridMask& grid, GridMask::Kind kind, const std::vector<int32_t>& order) {
  OMNI_REQUIRE(grid.kind == kind, "grid.kind", kind == GridMask::Kind::neighborhood ? "neighborhood" : "axial",
          std::to_string(static_cast<int>(grid.kind)));
  OMNI_REQUIRE(grid.ndim >= 1 && grid.ndim <= 3, "grid.ndim", "1, 2 or 3", std::to_string(grid.ndim));
  OMNI_REQUIRE(g.q_tokens == grid.tokens() && g.k_tokens == grid.tokens(), "geometry",
          fmt::format("q_tokens = k_tokens = {} (the grid's tokens)", grid.tokens()),
          fmt::format("{} and {}", g.q_tokens, g.k_tokens));
  OMNI_REQUIRE(order.empty() || static_cast<int64_t>(order.size()) == grid.tokens(), "token_order",
          fmt::format("{} entries or none", grid.tokens()), std::to_string(order.size()));
}

// Row-major coordinates of grid index t.
void coords(const GridMask& grid, int64_t t, int64_t* x) {
  for (int a = grid.ndim - 1; a >= 0; --a) {
    x[a] = t % grid.shape[a];
    t /= grid.shape[a];
  }
}

// Builds the mask from a per-query enumeration of visible grid indices.
template <class Enumerate>
BlockMask grid_mask(const Geometry& g, const GridMask& grid, const std::vector<int32_t>& order, Enumerate&& enumerate) {
  ElementMask e;
  e.grid = grid;
  if (!order.empty()) e.token_order = {order.data(), static_cast<int64_t>(order.size())};
  const std::vector<int32_t> position = order.empty() ? std::vector<int32_t>{} : inverse_order(order);
  std::vector<int64_t> visible;
  BlockMask m = detail::sparse::build_block_mask(g, e, [&](int64_t, int64_t i, Intervals& out) {
    int64_t x[3] = {0, 0, 0};
    coords(grid, order.empty() ? i : order[static_cast<size_t>(i)], x);
    visible.clear();
    enumerate(x, visible);
    for (int64_t t : visible) {
      const int64_t p = position.empty() ? t : position[static_cast<size_t>(t)];
      out.emplace_back(p, p + 1);
    }
  });
  if (!order.empty()) m.set_token_order(order);
  return m;
}

}  // namespace

BlockMask neighborhood(const Geometry& g, const GridMask& grid, const std::vector<int32_t>& token_order) {
  check_grid(g, grid, GridMask::Kind::neighborhood, token_order);
  for (int a = 0; a < grid.ndim; ++a)
    OMNI_REQUIRE(grid.kernel[a] >= 1 && grid.dilation[a] >= 1 && grid.kernel[a] * grid.dilation[a] <= grid.shape[a] &&
                grid.stride[a] >= 1 && grid.stride[a] <= grid.kernel[a],
            fmt::format("grid axis {}", a), "1 <= kernel * dilation <= shape and 1 <= stride <= kernel",
            fmt::format("shape {}, kernel {}, dilation {}, stride {}", grid.shape[a], grid.kernel[a], grid.dilation[a],
                        grid.stride[a]));
  std::vector<int64_t> axis_keys[3];
  return grid_mask(g, grid, token_order, [&](const int64_t* x, std::vector<int64_t>& out) {
    // Per axis the visible coordinates, then their product (row-major grid indices).
    for (int a = 0; a < 3; ++a) {
      axis_keys[a].clear();
      if (a >= grid.ndim) {
        axis_keys[a].push_back(0);
        continue;
      }
      for (int64_t y = 0; y < grid.shape[a]; ++y)
        if (grid.axis_visible(a, x[a], y)) axis_keys[a].push_back(y);
    }
    const int64_t s1 = grid.ndim > 1 ? grid.shape[1] : 1, s2 = grid.ndim > 2 ? grid.shape[2] : 1;
    for (int64_t y0 : axis_keys[0])
      for (int64_t y1 : axis_keys[1])
        for (int64_t y2 : axis_keys[2]) out.push_back((y0 * s1 + y1) * s2 + y2);
  });
}

BlockMask axial(const Geometry& g, const GridMask& grid, const std::vector<int32_t>& token_order) {
  check_grid(g, grid, GridMask::Kind::axial, token_order);
  return grid_mask(g, grid, token_order, [&](const int64_t* x, std::vector<int64_t>& out) {
    int64_t y[3] = {x[0], x[1], x[2]};
    auto index = [&] {
      int64_t t = 0;
      for (int a = 0; a < grid.ndim; ++a) t = t * grid.shape[a] + y[a];
      return t;
    };
    out.push_back(index());  // the query's own token, once
    for (int a = 0; a < grid.ndim; ++a) {
      const int64_t end = grid.causal[a] ? x[a] + 1 : grid.shape[a];
      for (y[a] = 0; y[a] < end; ++y[a])
        if (y[a] != x[a]) out.push_back(index());
      y[a] = x[a];
    }
  });
}

}  // namespace omniattn::sparse
