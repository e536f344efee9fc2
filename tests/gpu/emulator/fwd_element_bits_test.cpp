// The forward kernels' element bits of partial blocks (TileScores::element_bits: per-row key ranges turned into
// column runs, documents and grids per score) against ElementMask::visible pair by pair, for the score tiles of
// the real kernels: sm_80 (4 row slots x 16 columns at block_m 128, 2 x 16 at 64) and sm_90a (2 x 32 at
// block_n 128, 2 x 16 at 64). The expected bits follow AccTile's layout (row_of_slot, col_of), not the formula
// the code uses, so a wrong column mapping fails.
#define OMNIATTN_CUDA_EMULATION 1
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "cuda/common/fragments.cuh"
#include "cuda/flash/fwd_score_mask.cuh"

namespace omniattn::detail::cuda {
namespace {

// A random rule with its arrays; `ref` is the same rule with huge scalar windows as unbounded (-1), which
// visible() needs (its d + window would overflow) and which means the same.
struct RandomRule {
  std::vector<int32_t> head_windows, q_document, k_document, token_order;
  ElementMask rule, ref;
};

RandomRule random_rule(std::mt19937& rng, int mask_heads, int q_len, int k_len) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  auto window = [&] {  // unbounded, in range, past any key, or huge
    switch (uniform(0, 5)) {
      case 0:
        return int64_t{-1};
      case 1:
        return int64_t{1} << 40;
      case 2:
        return int64_t{INT64_MAX};
      default:
        return uniform(0, 300);
    }
  };
  auto count = [&] { return uniform(0, 3) == 0 ? (uniform(0, 1) ? int64_t{1} << 40 : uniform(0, 80)) : 0; };
  RandomRule r;
  ElementMask& e = r.rule;
  e.window_left = window();
  e.window_right = window();
  e.sinks = count();
  e.prefix = count();
  if (uniform(0, 2) == 0) {
    for (int h = 0; h < mask_heads; ++h)
      for (int64_t x : {window(), window(), count()})
        r.head_windows.push_back(static_cast<int32_t>(std::min<int64_t>(x, INT32_MAX)));
    e.head_windows = {r.head_windows.data(), static_cast<int64_t>(r.head_windows.size())};
  }
  if (uniform(0, 3) == 0) {  // documents: nondecreasing ids, breaks anywhere (queries and keys apart)
    for (auto [doc, n] : {std::pair{&r.q_document, q_len}, std::pair{&r.k_document, k_len}}) {
      int32_t id = 0;
      for (int t = 0; t < n; ++t) doc->push_back(id += uniform(0, 40) == 0);
    }
    e.q_document = {r.q_document.data(), q_len};
    e.k_document = {r.k_document.data(), k_len};
  }
  r.ref = e;
  if (r.ref.window_left == INT64_MAX) r.ref.window_left = -1;
  if (r.ref.window_right == INT64_MAX) r.ref.window_right = -1;
  return r;
}

// A 2-D neighborhood or axial grid rule on q_len = k_len tokens, with or without a token order.
void add_grid(RandomRule& r, std::mt19937& rng, int rows, int cols) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  GridMask& g = r.rule.grid;
  g.kind = uniform(0, 2) ? GridMask::Kind::neighborhood : GridMask::Kind::axial;
  g.ndim = 2;
  g.shape[0] = rows;
  g.shape[1] = cols;
  for (int a = 0; a < 2; ++a) {
    g.kernel[a] = uniform(1, g.shape[a]);
    g.causal[a] = uniform(0, 3) == 0;
  }
  if (uniform(0, 1)) {
    r.token_order.resize(rows * cols);
    std::iota(r.token_order.begin(), r.token_order.end(), 0);
    std::shuffle(r.token_order.begin(), r.token_order.end(), rng);
    r.rule.token_order = {r.token_order.data(), rows * cols};
  }
  r.ref.grid = g;
  r.ref.token_order = r.rule.token_order;
}

// Counts of lane rows whose bits mix visible and hidden scores, to check the cases cover the edges.
struct Coverage {
  int64_t mixed_rows = 0, rows = 0;
};

// Random geometry and rules; for each, tiles at random rows and keys (past the sequence included), every lane.
template <int kM, int kN, bool kOutOfLine>
void check_against_visible(uint32_t seed, int trials, Coverage& cover) {
  using SAcc = AccTile<kM, kN>;
  constexpr int kRowSlots = SAcc::kRowSlots, kCols = 2 * kN;
  std::mt19937 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int trial = 0; trial < trials; ++trial) {
    FwdParams p;
    const int hkv = static_cast<int>(uniform(1, 2)), group = static_cast<int>(uniform(1, 3));
    p.hq = hkv * group;
    p.group = group;
    p.pack = uniform(0, 1) ? group : 1;
    p.head_blocks = p.hq / p.pack;
    const int heads_choice[] = {1, hkv, p.hq};
    p.sparse.heads = heads_choice[uniform(0, 2)];
    p.sparse.hq = p.hq;
    int q_len = static_cast<int>(uniform(1, 700)), k_len = static_cast<int>(uniform(1, 700));
    const bool grid = uniform(0, 5) == 0;
    const int grid_rows = static_cast<int>(uniform(1, 20)), grid_cols = static_cast<int>(uniform(1, 24));
    if (grid) q_len = k_len = grid_rows * grid_cols;
    RandomRule rule = random_rule(rng, p.sparse.heads, q_len, k_len);
    if (grid) add_grid(rule, rng, grid_rows, grid_cols);
    p.sparse.element = rule.rule;

    CtaWork w;
    w.seq.q_len = q_len;
    w.seq.k_len = k_len;
    w.rows = q_len * p.pack;
    for (int tile = 0; tile < 8; ++tile) {
      w.head_block = static_cast<int>(uniform(0, p.head_blocks - 1));
      // The warp's first row (w.row0 + warp_row0) is all that matters: a multiple of 16, its tile may reach past
      // the rows.
      w.row0 = static_cast<int>(uniform(0, (w.rows + 15) / 16)) * 16;
      const int warp_row0 = 0;
      // Any key offset: tiles start at multiples of the tile width, but the lane's col0 is what matters.
      const int j0 = static_cast<int>(uniform(0, k_len + 64));
      for (int lane = 0; lane < 32; ++lane) {
        const uint64_t bits = TileScores<SAcc>::template element_bits<kOutOfLine>(p, w, warp_row0, j0, lane);
        for (int r = 0; r < kRowSlots; ++r) {
          const int row = w.row0 + warp_row0 + SAcc::row_of_slot(r, lane);
          int seen = 0;
          for (int n = 0; n < kN; ++n)
            for (int e = 0; e < 2; ++e) {
              const int64_t j = j0 + SAcc::col_of(n, e, lane);
              bool expected = false;
              if (row < w.rows && j < k_len) {
                const int64_t i = row / p.pack, head = p.sparse.mask_head(w.head_block * p.pack + row % p.pack);
                expected = rule.ref.visible(head, i, j, q_len, k_len);
              }
              const bool got = (bits >> (r * kCols + 2 * n + e)) & 1;
              seen += expected;
              ASSERT_EQ(got, expected) << "seed " << seed << " trial " << trial << " lane " << lane << " row " << row
                                       << " key " << j << " (slot " << r << ", n " << n << ", e " << e << "), q_len "
                                       << q_len << " k_len " << k_len << " window (" << rule.rule.window_left << ", "
                                       << rule.rule.window_right << ") sinks " << rule.rule.sinks << " prefix "
                                       << rule.rule.prefix << " head windows " << !rule.rule.head_windows.empty()
                                       << " documents " << !rule.rule.q_document.empty() << " grid " << grid;
            }
          cover.rows += row < w.rows;
          cover.mixed_rows += seen > 0 && seen < kCols;
        }
      }
    }
  }
}

TEST(FwdElementBits, Sm80Tiles4x16And2x16) {
  Coverage cover;
  check_against_visible<2, 8, true>(1, 1500, cover);  // block_m 128: 32 rows per warp
  check_against_visible<1, 8, true>(2, 1500, cover);  // block_m 64: 16 rows per warp
  EXPECT_GT(cover.mixed_rows, cover.rows / 10) << "too few rows cut inside the lane's columns";
}

TEST(FwdElementBits, Sm90Tiles2x32And2x16) {
  Coverage cover;
  check_against_visible<1, 16, false>(3, 1500, cover);  // block_n 128
  check_against_visible<1, 8, false>(4, 1500, cover);   // block_n 64
  EXPECT_GT(cover.mixed_rows, cover.rows / 10) << "too few rows cut inside the lane's columns";
}

// The column count at each offset of the layout: keys col0 + 8 (c / 2) + c % 2 below col0 + t.
TEST(FwdElementBits, ColumnsBelowFollowsTheLaneLayout) {
  constexpr int kCols = 32;
  for (int col0 : {0, 6, 1000})
    for (int t = -40; t < 4 * kCols + 40; ++t) {
      if (col0 + t < 0) continue;
      int expected = 0;
      for (int c = 0; c < kCols; ++c) expected += col0 + 8 * (c / 2) + c % 2 < col0 + t;
      ASSERT_EQ(columns_below<kCols>(col0 + t, col0), expected) << "col0 " << col0 << " t " << t;
    }
}

}  // namespace
}  // namespace omniattn::detail::cuda
