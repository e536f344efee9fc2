// Token orders for grids: tile-shaped (so a 2-D/3-D window covers whole blocks of the sequence) and
// Hilbert-curve (so a 1-D window over the sequence is a compact 2-D/3-D region), their inverse, and
// applying an order to a tensor's token axis.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/validate.hpp"
#include "omniattn/sparse.hpp"

namespace omniattn::sparse {
namespace {


// Hilbert index of point x (n axes, b bits each) by Skilling's transform ("Programming the Hilbert
// curve", 2004): axes -> transposed index, whose bits interleaved (most significant first) are the index.
uint64_t hilbert_index(uint32_t* x, int n, int b) {
  const uint32_t top = 1u << (b - 1);
  for (uint32_t q = top; q > 1; q >>= 1) {
    const uint32_t low = q - 1;
    for (int i = 0; i < n; ++i) {
      if (x[i] & q) {
        x[0] ^= low;  // invert the low bits of the first axis
      } else {
        const uint32_t t = (x[0] ^ x[i]) & low;  // exchange the low bits of axes 0 and i
        x[0] ^= t;
        x[i] ^= t;
      }
    }
  }
  for (int i = 1; i < n; ++i) x[i] ^= x[i - 1];  // Gray encode
  uint32_t t = 0;
  for (uint32_t q = top; q > 1; q >>= 1)
    if (x[n - 1] & q) t ^= q - 1;
  for (int i = 0; i < n; ++i) x[i] ^= t;
  uint64_t index = 0;
  for (int bit = b - 1; bit >= 0; --bit)
    for (int i = 0; i < n; ++i) index = (index << 1) | ((x[i] >> bit) & 1u);
  return index;
}

}  // namespace

std::vector<int32_t> tile_order(const GridMask& grid, const std::array<int64_t, 3>& tile) {
  OMNI_REQUIRE(grid.ndim >= 1 && grid.ndim <= 3, "grid.ndim", "1, 2 or 3", std::to_string(grid.ndim));
  int64_t shape[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, t[3] = {1, 1, 1};
  for (int a = 0; a < grid.ndim; ++a) {
    shape[a] = grid.shape[a];
    dil[a] = grid.kind == GridMask::Kind::neighborhood ? grid.dilation[a] : 1;
    t[a] = tile[static_cast<size_t>(a)];
    OMNI_REQUIRE(shape[a] >= 1 && dil[a] >= 1 && dil[a] <= shape[a], fmt::format("grid axis {}", a),
            "shape >= 1 and 1 <= dilation <= shape", fmt::format("shape {}, dilation {}", shape[a], dil[a]));
    OMNI_REQUIRE(t[a] >= 1, "tile", "sizes >= 1", std::to_string(t[a]));
  }
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(grid.tokens()));
  int64_t g[3];  // dilation group
  for (g[0] = 0; g[0] < dil[0]; ++g[0])
    for (g[1] = 0; g[1] < dil[1]; ++g[1])
      for (g[2] = 0; g[2] < dil[2]; ++g[2]) {
        int64_t n[3];  // the group's sub-grid: coordinates x with x % dilation = g, as x / dilation
        for (int a = 0; a < 3; ++a) n[a] = (shape[a] - g[a] + dil[a] - 1) / dil[a];
        for (int64_t t0 = 0; t0 < n[0]; t0 += t[0])
          for (int64_t t1 = 0; t1 < n[1]; t1 += t[1])
            for (int64_t t2 = 0; t2 < n[2]; t2 += t[2])
              for (int64_t y0 = t0; y0 < std::min(t0 + t[0], n[0]); ++y0)
                for (int64_t y1 = t1; y1 < std::min(t1 + t[1], n[1]); ++y1)
                  for (int64_t y2 = t2; y2 < std::min(t2 + t[2], n[2]); ++y2) {
                    const int64_t x0 = y0 * dil[0] + g[0], x1 = y1 * dil[1] + g[1], x2 = y2 * dil[2] + g[2];
                    order.push_back(static_cast<int32_t>((x0 * shape[1] + x1) * shape[2] + x2));
                  }
      }
  return order;
}

std::vector<int32_t> hilbert_order(const GridMask& grid) {
  OMNI_REQUIRE(grid.ndim == 2 || grid.ndim == 3, "grid.ndim", "2 or 3", std::to_string(grid.ndim));
  int64_t largest = 1;
  for (int a = 0; a < grid.ndim; ++a) {
    OMNI_REQUIRE(grid.shape[a] >= 1 && grid.shape[a] <= (1 << 20), fmt::format("grid axis {}", a), "shape in [1, 2^20]",
            std::to_string(grid.shape[a]));
    largest = std::max(largest, grid.shape[a]);
  }
  int bits = 1;
  while ((int64_t{1} << bits) < largest) ++bits;
  const int64_t n = grid.tokens();
  std::vector<std::pair<uint64_t, int32_t>> keyed(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) {
    uint32_t x[3] = {0, 0, 0};
    int64_t rest = t;
    for (int a = grid.ndim - 1; a >= 0; --a) {
      x[a] = static_cast<uint32_t>(rest % grid.shape[a]);
      rest /= grid.shape[a];
    }
    keyed[static_cast<size_t>(t)] = {hilbert_index(x, grid.ndim, bits), static_cast<int32_t>(t)};
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<int32_t> order(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) order[static_cast<size_t>(p)] = keyed[static_cast<size_t>(p)].second;
  return order;
}

std::vector<int32_t> inverse_order(const std::vector<int32_t>& order) {
  std::vector<int32_t> inverse(order.size(), -1);
  for (size_t p = 0; p < order.size(); ++p) {
    const int32_t t = order[p];
    OMNI_REQUIRE(t >= 0 && static_cast<size_t>(t) < order.size() && inverse[static_cast<size_t>(t)] < 0, "order",
            fmt::format("a permutation of [0, {})", order.size()), fmt::format("{} at position {}", t, p));
    inverse[static_cast<size_t>(t)] = static_cast<int32_t>(p);
  }
  return inverse;
}

void permute_tokens(const TensorView& src, const TensorView& dst, const std::vector<int32_t>& order) {
  for (auto [t, name] : {std::pair{&src, "src"}, {&dst, "dst"}}) {
    detail::require_defined(*t, name);
    OMNI_REQUIRE(t->ndim == 3 || t->ndim == 4, name, "[B, S, H, D] or [S, H, D]", detail::shape_string(*t));
    OMNI_REQUIRE(t->device.is_cpu(), name, "a CPU tensor", to_string(t->device));
    detail::require_inner_contiguous(*t, name);
    detail::require_addressable(*t, name);
  }
  OMNI_REQUIRE(dst.ndim == src.ndim && std::equal(dst.shape.begin(), dst.shape.begin() + dst.ndim, src.shape.begin()) &&
              dst.dtype == src.dtype,
          "dst", "the shape and dtype of src", detail::shape_string(dst) + " " + to_string(dst.dtype));
  const int tok = src.ndim - 3;
  OMNI_REQUIRE(static_cast<int64_t>(order.size()) == src.shape[tok], "order", fmt::format("{} entries (tokens)", src.shape[tok]),
          std::to_string(order.size()));
  inverse_order(order);  // checks it is a permutation
  detail::require_disjoint(dst, "dst", src, "src");
  const int64_t batch = src.ndim == 4 ? src.shape[0] : 1, heads = src.shape[tok + 1], dim = src.shape[tok + 2];
  const int64_t elem = dtype_size(src.dtype);
  const int64_t sb = src.ndim == 4 ? src.stride[0] : 0, db = dst.ndim == 4 ? dst.stride[0] : 0;
  for (int64_t b = 0; b < batch; ++b)
    for (size_t p = 0; p < order.size(); ++p)
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t from = b * sb + order[p] * src.stride[tok] + h * src.stride[tok + 1];
        const int64_t to = b * db + static_cast<int64_t>(p) * dst.stride[tok] + h * dst.stride[tok + 1];
        std::memcpy(static_cast<char*>(dst.data) + to * elem, static_cast<const char*>(src.data) + from * elem,
                    static_cast<size_t>(dim * elem));
      }
}

}  // namespace omniattn::sparse
