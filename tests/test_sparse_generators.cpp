// Every generator against a dense boolean mask written plainly here: the BlockMask must be its exact block
// form (exact_block_form), at odd token counts and every block size pair. Also the token orders.
#include <cmath>
#include <numeric>
#include <set>

#include "support/test_util.hpp"
#include "test_sparse_common.hpp"

namespace omniattn::testing {
namespace {

using sparse::Geometry;

const std::pair<int64_t, int64_t> kBlocks[] = {{64, 64}, {64, 128}, {128, 64}, {128, 128}};

TEST(SparseGenerators, SlidingWindowSinksPrefix) {
  for (auto [sq, sk] : {std::pair<int64_t, int64_t>{1, 1}, {17, 113}, {239, 239}, {300, 130}})
    for (auto [bq, bk] : kBlocks) {
      const Geometry g{1, 1, sq, sk, bq, bk};
      SCOPED_TRACE(::testing::Message() << sq << "x" << sk << " blocks " << bq << "/" << bk);
      for (auto [left, right] : {std::pair<int64_t, int64_t>{70, 0}, {9, 9}, {-1, 0}, {0, -1}, {130, 5}, {-1, -1}}) {
        const BlockMask m = sparse::sliding_window(g, left, right);
        EXPECT_TRUE(exact_block_form(m, DenseMask::of(1, sq, sk, [&](int64_t, int64_t i, int64_t j) {
          const int64_t d = i + sk - sq;
          return (left < 0 || j >= d - left) && (right < 0 || j <= d + right);
        }))) << "window " << left << "," << right;
      }
      for (auto [sinks, left] : {std::pair<int64_t, int64_t>{4, 64}, {1, 0}, {100, 30}}) {
        EXPECT_TRUE(exact_block_form(sparse::sinks_window(g, sinks, left), DenseMask::of(1, sq, sk, [&](int64_t, int64_t i, int64_t j) {
          const int64_t d = i + sk - sq;
          return j <= d && (j >= d - left || j < sinks);
        }))) << "sinks " << sinks << " window " << left;
      }
      for (int64_t prefix : {0, 1, 50, 200}) {
        EXPECT_TRUE(exact_block_form(sparse::prefix_lm(g, prefix), DenseMask::of(1, sq, sk, [&](int64_t, int64_t i, int64_t j) {
          return j < prefix || j <= i + sk - sq;
        }))) << "prefix " << prefix;
      }
    }
}

TEST(SparseGenerators, Documents) {
  const std::vector<int64_t> lengths = {5, 0, 113, 64, 1, 130};
  std::vector<int64_t> doc;
  for (size_t d = 0; d < lengths.size(); ++d) doc.insert(doc.end(), static_cast<size_t>(lengths[d]), int64_t(d));
  const int64_t n = static_cast<int64_t>(doc.size());
  for (auto [bq, bk] : kBlocks)
    for (bool causal : {false, true}) {
      const BlockMask m = sparse::documents({2, 1, n, n, bq, bk}, lengths, causal);
      EXPECT_TRUE(exact_block_form(m, DenseMask::of(1, n, n, [&](int64_t, int64_t i, int64_t j) {
        return doc[static_cast<size_t>(i)] == doc[static_cast<size_t>(j)] && (!causal || j <= i);
      })));
    }
  EXPECT_THROW(sparse::documents({1, 1, 10, 10, 64, 64}, {4, 5}, true), Error);  // lengths sum to 9
}

TEST(SparseGenerators, DilatedAndPowerOfTwoBlocks) {
  for (int64_t n : {1, 239, 1000})
    for (int64_t block : {64, 128}) {
      const Geometry g{1, 1, n, n, block, block};
      for (auto [window, dilation] : {std::pair<int64_t, int64_t>{2, 1}, {3, 2}, {1, 3}})
        for (bool causal : {false, true})
          EXPECT_TRUE(exact_block_form(sparse::dilated_blocks(g, window, dilation, causal),
                                       DenseMask::of(1, n, n, [&](int64_t, int64_t i, int64_t j) {
                                         const int64_t delta = std::abs(i / block - j / block);
                                         return delta % dilation == 0 && delta / dilation < window && (!causal || j <= i);
                                       })));
      for (int64_t sink_blocks : {0, 1})
        EXPECT_TRUE(exact_block_form(sparse::power_of_two_blocks(g, sink_blocks),
                                     DenseMask::of(1, n, n, [&](int64_t, int64_t i, int64_t j) {
                                       const int64_t delta = i / block - j / block;
                                       const bool power = delta > 0 && (int64_t{1} << std::llround(std::log2(double(delta)))) == delta;
                                       return j <= i && (j / block < sink_blocks || delta == 0 || power);
                                     })));
    }
  EXPECT_THROW(sparse::dilated_blocks({1, 1, 100, 100, 64, 128}, 2, 1, false), Error);  // block sizes differ
}

TEST(SparseGenerators, PerHeadWindows) {
  const std::vector<std::array<int64_t, 3>> windows = {{16, 0, 0}, {200, 0, 4}, {-1, -1, 0}, {3, 3, 1}};
  for (auto [bq, bk] : kBlocks) {
    const BlockMask m = sparse::head_windows({1, 4, 239, 200, bq, bk}, windows);
    EXPECT_TRUE(exact_block_form(m, DenseMask::of(4, 239, 200, [&](int64_t h, int64_t i, int64_t j) {
      const auto [left, right, sinks] = windows[static_cast<size_t>(h)];
      const int64_t d = i + 200 - 239;
      return (right < 0 || j <= d + right) && (left < 0 || j >= d - left || j < sinks);
    })));
  }
}

// The plain NA oracle of test_sparse_common.hpp on every axis, through an optional token order.
DenseMask neighborhood_oracle(const GridMask& grid, const std::vector<int32_t>& order) {
  const int64_t n = grid.tokens();
  auto coords = [&](int64_t t, int64_t* x) {
    for (int a = grid.ndim - 1; a >= 0; --a) x[a] = t % grid.shape[a], t /= grid.shape[a];
  };
  return DenseMask::of(1, n, n, [&](int64_t, int64_t i, int64_t j) {
    int64_t x[3], y[3];
    coords(order.empty() ? i : order[static_cast<size_t>(i)], x);
    coords(order.empty() ? j : order[static_cast<size_t>(j)], y);
    for (int a = 0; a < grid.ndim; ++a)
      if (!na_axis(grid.shape[a], grid.kernel[a], grid.dilation[a], grid.stride[a], grid.causal[a], x[a], y[a]))
        return false;
    return true;
  });
}

GridMask grid_of(std::vector<int64_t> shape, std::vector<int64_t> kernel, std::vector<int64_t> dilation,
                 std::vector<int64_t> stride, std::vector<bool> causal) {
  GridMask g;
  g.kind = GridMask::Kind::neighborhood;
  g.ndim = static_cast<int>(shape.size());
  for (int a = 0; a < g.ndim; ++a) {
    g.shape[a] = shape[a];
    g.kernel[a] = kernel[a];
    g.dilation[a] = dilation[a];
    g.stride[a] = stride[a];
    g.causal[a] = causal[a];
  }
  return g;
}

TEST(SparseGenerators, NeighborhoodOneTwoThreeD) {
  const GridMask grids[] = {
      grid_of({239}, {17}, {1}, {1}, {false}),
      grid_of({200}, {8}, {3}, {4}, {true}),
      grid_of({23, 17}, {7, 4}, {1, 2}, {2, 3}, {false, false}),
      grid_of({16, 16}, {5, 5}, {1, 1}, {1, 1}, {true, false}),
      grid_of({5, 9, 8}, {3, 3, 4}, {1, 2, 2}, {1, 2, 1}, {true, false, false}),
  };
  for (const GridMask& grid : grids)
    for (int ordered = 0; ordered < 3; ++ordered) {
      std::vector<int32_t> order;
      if (ordered == 1) order = sparse::tile_order(grid, {4, 4, 4});
      if (ordered == 2 && grid.ndim > 1) order = sparse::hilbert_order(grid);
      const int64_t n = grid.tokens();
      for (auto [bq, bk] : kBlocks) {
        SCOPED_TRACE(::testing::Message() << "grid " << grid.ndim << "-D, " << n << " tokens, order " << ordered
                                        << ", blocks " << bq << "/" << bk);
        const BlockMask m = sparse::neighborhood({1, 1, n, n, bq, bk}, grid, order);
        EXPECT_TRUE(exact_block_form(m, neighborhood_oracle(grid, order)));
      }
    }
}

TEST(SparseGenerators, TileOrderMakesNeighborhoodsDense) {
  // 64 x 64 image, 17 x 17 window: in row-major order a 64-token block is one image row and sees 17 rows;
  // with 8 x 8 tiles (= blocks) it sees at most 3 x 3 tiles.
  const GridMask grid = grid_of({64, 64}, {17, 17}, {1, 1}, {1, 1}, {false, false});
  const Geometry g{1, 1, 4096, 4096, 64, 64};
  const BlockMask plain = sparse::neighborhood(g, grid), tiled = sparse::neighborhood(g, grid, sparse::tile_order(grid, {8, 8, 1}));
  EXPECT_LE(tiled.listed_blocks(), 64 * 9);
  EXPECT_GE(plain.listed_blocks(), 64 * 9 + 64 * 4);
  EXPECT_GT(tiled.listed_blocks(), 0);
}

TEST(SparseGenerators, Axial) {
  for (bool causal : {false, true}) {
    GridMask grid;
    grid.kind = GridMask::Kind::axial;
    grid.ndim = 3;
    grid.shape[0] = 3, grid.shape[1] = 11, grid.shape[2] = 7;
    grid.causal[1] = causal;
    const int64_t n = grid.tokens();
    for (auto [bq, bk] : kBlocks) {
      const BlockMask m = sparse::axial({1, 1, n, n, bq, bk}, grid);
      EXPECT_TRUE(exact_block_form(m, DenseMask::of(1, n, n, [&](int64_t, int64_t i, int64_t j) {
        const int64_t x[3] = {i / 77, i / 7 % 11, i % 7}, y[3] = {j / 77, j / 7 % 11, j % 7};
        int differ = 0;
        for (int a = 0; a < 3; ++a) differ += x[a] != y[a];
        if (differ == 0) return true;
        if (differ > 1) return false;
        return !(causal && x[1] != y[1] && y[1] > x[1]);
      })));
    }
  }
}

bool is_permutation(const std::vector<int32_t>& order, int64_t n) {
  std::vector<int32_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int32_t> iota(static_cast<size_t>(n));
  std::iota(iota.begin(), iota.end(), 0);
  return sorted == iota;
}

TEST(TokenOrders, TileOrderIsTilesOfTheDilationGroups) {
  GridMask grid = grid_of({12, 10}, {3, 3}, {2, 1}, {1, 1}, {false, false});
  const std::vector<int32_t> order = sparse::tile_order(grid, {3, 4, 1});
  ASSERT_TRUE(is_permutation(order, 120));
  // Dilation group 0 (even rows) first: 6 x 10 sub-grid, tiles of 3 x 4: the first tile is rows 0, 2, 4
  // and columns 0..3.
  for (int p = 0; p < 12; ++p) EXPECT_EQ(order[static_cast<size_t>(p)], (p / 4) * 2 * 10 + p % 4);
  for (int p = 0; p < 60; ++p) EXPECT_EQ(order[static_cast<size_t>(p)] / 10 % 2, 0);  // group 0 first
  const std::vector<int32_t> inverse = sparse::inverse_order(order);
  for (int p = 0; p < 120; ++p) EXPECT_EQ(inverse[static_cast<size_t>(order[static_cast<size_t>(p)])], p);
}

TEST(TokenOrders, HilbertStepsAreNeighbours) {
  for (auto shape : {std::vector<int64_t>{16, 16}, {8, 8, 8}, {2, 2}}) {
    GridMask grid = grid_of(shape, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {false, false, false});
    const std::vector<int32_t> order = sparse::hilbert_order(grid);
    ASSERT_TRUE(is_permutation(order, grid.tokens()));
    for (size_t p = 1; p < order.size(); ++p) {
      int64_t a = order[p - 1], b = order[p], distance = 0;
      for (int ax = grid.ndim - 1; ax >= 0; --ax) {
        distance += std::abs(a % grid.shape[ax] - b % grid.shape[ax]);
        a /= grid.shape[ax], b /= grid.shape[ax];
      }
      ASSERT_EQ(distance, 1) << "step " << p;
    }
  }
  GridMask odd = grid_of({13, 7}, {1, 1}, {1, 1}, {1, 1}, {false, false});
  EXPECT_TRUE(is_permutation(sparse::hilbert_order(odd), 91));
}

TEST(TokenOrders, PermuteTokensAndBack) {
  HostTensor x = random_normal(DType::bf16, {2, 91, 3, 5}), y(DType::bf16, {2, 91, 3, 5}), z(DType::bf16, {2, 91, 3, 5});
  GridMask odd = grid_of({13, 7}, {1, 1}, {1, 1}, {1, 1}, {false, false});
  const std::vector<int32_t> order = sparse::hilbert_order(odd);
  sparse::permute_tokens(x, y, order);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t p = 0; p < 91; ++p)
      for (int64_t c = 0; c < 15; ++c)
        ASSERT_EQ(y.get((b * 91 + p) * 15 + c), x.get((b * 91 + order[static_cast<size_t>(p)]) * 15 + c));
  sparse::permute_tokens(y, z, sparse::inverse_order(order));
  EXPECT_EQ(max_abs_diff(x, z), 0.0);
  EXPECT_THROW(sparse::permute_tokens(x, x, order), Error);  // in place
  EXPECT_THROW(sparse::permute_tokens(x, y, std::vector<int32_t>(91, 0)), Error);
}

}  // namespace
}  // namespace omniattn::testing
