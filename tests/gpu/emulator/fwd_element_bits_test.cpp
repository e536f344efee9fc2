// The forward kernels' element bits of partial blocks (TileScores::element_bits: per-row key ranges turned into
// column runs, grids from make_grid_table's packed coordinates or per score, documents per score) against
// ElementMask::visible pair by pair, for the score tiles of the real kernels: sm_80 (4 row slots x 16 columns at
// block_m 128, 2 x 16 at 64) and sm_90a (2 x 32 at block_n 128, 2 x 16 at 64). The expected bits follow AccTile's
// layout (row_of_slot, col_of), not the formula the code uses, so a wrong column mapping fails.
// Also the backward's element_hidden_bits (S^T fragments: rows are keys, columns queries) with the sm_90a
// backward's grid-table path against the same oracle.
#define OMNIATTN_CUDA_EMULATION 1
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda/bwd/bwd_sparse.cuh"
#include "cuda/common/fragments.cuh"
#include "cuda/flash/fwd_score_mask.cuh"
#include "omniattn/sparse.hpp"

namespace omniattn::detail::cuda {
namespace {

// A random rule with its arrays; `ref` is the same rule with huge scalar windows as unbounded (-1), which
// visible() needs (its d + window would overflow) and which means the same.
struct RandomRule {
  std::vector<int32_t> head_windows, q_document, k_document, token_order, grid_table;
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

// The shape of a random 1-D, 2-D or 3-D grid of at most 700 tokens.
GridMask random_grid_shape(std::mt19937& rng) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  GridMask g;
  g.ndim = static_cast<int>(uniform(1, 3));
  const int64_t most[] = {700, 26, 8};  // per axis, by ndim
  for (int a = 0; a < g.ndim; ++a) g.shape[a] = uniform(1, most[g.ndim - 1]);
  return g;
}

// A neighborhood (kernel, dilation, stride, causal per axis: any the constraints allow) or axial rule on the grid,
// in grid order, a random order or a tile order; the kernels' grid_table with probability 3/4 (else they evaluate
// visible() per score).
void add_grid(RandomRule& r, std::mt19937& rng, const GridMask& shape) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  GridMask& g = r.rule.grid;
  g = shape;
  g.kind = uniform(0, 2) ? GridMask::Kind::neighborhood : GridMask::Kind::axial;
  for (int a = 0; a < g.ndim; ++a) {
    const int64_t L = g.shape[a];
    switch (uniform(0, 3)) {  // small windows, dilated ones, the whole axis, anything
      case 0:
        g.kernel[a] = uniform(1, std::min<int64_t>(L, 7));
        break;
      case 1:
        g.kernel[a] = uniform(1, std::max<int64_t>(L / 3, 1));
        g.dilation[a] = uniform(1, L / g.kernel[a]);
        break;
      case 2:
        g.kernel[a] = L;
        break;
      default:
        g.kernel[a] = uniform(1, L);
        g.dilation[a] = uniform(1, L / g.kernel[a]);
    }
    g.stride[a] = uniform(0, 1) ? 1 : uniform(1, g.kernel[a]);
    g.causal[a] = uniform(0, 2) == 0;
  }
  const int64_t tokens = g.tokens();
  switch (uniform(0, 2)) {
    case 0:
      break;
    case 1:
      r.token_order.resize(static_cast<size_t>(tokens));
      std::iota(r.token_order.begin(), r.token_order.end(), 0);
      std::shuffle(r.token_order.begin(), r.token_order.end(), rng);
      break;
    default:
      r.token_order = sparse::tile_order(g, {uniform(1, 8), uniform(1, 8), uniform(1, 8)});
  }
  if (!r.token_order.empty()) r.rule.token_order = {r.token_order.data(), tokens};
  r.ref.grid = g;
  r.ref.token_order = r.rule.token_order;
  if (uniform(0, 3)) {
    r.grid_table = make_grid_table(g, r.rule.token_order);
    EXPECT_FALSE(r.grid_table.empty());
    r.rule.grid_table = {r.grid_table.data(), static_cast<int64_t>(r.grid_table.size())};
  }
}

std::string describe(const ElementMask& e) {
  const GridMask& g = e.grid;
  if (g.kind == GridMask::Kind::none) return "";
  std::string s = g.kind == GridMask::Kind::axial ? " (axial" : " (neighborhood";
  for (int a = 0; a < g.ndim; ++a)
    s += " [shape " + std::to_string(g.shape[a]) + " kernel " + std::to_string(g.kernel[a]) + " dilation " +
         std::to_string(g.dilation[a]) + " stride " + std::to_string(g.stride[a]) + (g.causal[a] ? " causal]" : "]");
  return s + (e.token_order.empty() ? "" : ", ordered") + (e.grid_table.empty() ? "" : ", table") + ")";
}

// Counts of lane rows whose bits mix visible and hidden scores, to check the cases cover the edges.
struct Coverage {
  int64_t mixed_rows = 0, rows = 0;
};

// Random geometry and rules; for each, tiles at random rows and keys (past the sequence included), every lane.
// A grid rule in one trial of `grid_one_in` (q_len = k_len = its tokens); grid-only trials drop the 1-D rules
// half the time, so that the grid decides most bits.
template <int kM, int kN, bool kOutOfLine>
void check_against_visible(uint32_t seed, int trials, Coverage& cover, int grid_one_in = 6) {
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
    const bool grid = uniform(1, grid_one_in) == 1;
    const GridMask grid_shape = random_grid_shape(rng);
    if (grid) q_len = k_len = static_cast<int>(grid_shape.tokens());
    RandomRule rule = random_rule(rng, p.sparse.heads, q_len, k_len);
    if (grid && grid_one_in == 1 && uniform(0, 1)) rule = RandomRule{};  // the grid alone
    if (grid) add_grid(rule, rng, grid_shape);
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
                                       << " documents " << !rule.rule.q_document.empty() << " grid " << grid
                                       << describe(rule.rule);
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

// Grids in every trial (1-D to 3-D, dilation, stride, causal axes, token orders; with and without the table), on
// their own or with the other rules.
TEST(FwdElementBits, GridsSm80AndSm90Tiles) {
  Coverage cover;
  check_against_visible<2, 8, true>(5, 1500, cover, 1);
  check_against_visible<1, 8, true>(6, 1500, cover, 1);
  check_against_visible<1, 16, false>(7, 1500, cover, 1);
  check_against_visible<1, 8, false>(8, 1500, cover, 1);
  EXPECT_GT(cover.mixed_rows, cover.rows / 10) << "too few rows cut inside the lane's columns";
}

// Every lane's hidden bits of the backward's S^T fragment (AccTile<1, 8>: 16 keys x 64 query rows per warp, the
// sm_90a and sm_80 backward's SAcc) through the sm_90a paths (element_hidden_bits<SAcc, true>; query rows from t0,
// the warp's keys from w.j0) against rule.ref.visible for query head `head` (mask head `mask_head`).
::testing::AssertionResult bwd_bits_match(const BwdParams& p, const BwdKvWork& w, const RandomRule& rule, int head,
                                          int mask_head, int t0) {
  using SAcc = AccTile<1, 8>;
  const int64_t q_len = w.seq.q_len, k_len = w.seq.k_len;
  for (int lane = 0; lane < 32; ++lane) {
    const uint32_t hidden = element_hidden_bits<SAcc, true>(p, w, head, t0, 0, 0, lane);
    for (int n = 0; n < SAcc::kN; ++n)
      for (int e1 = 0; e1 < 2; ++e1)
        for (int r = 0; r < SAcc::kRowSlots; ++r) {
          const int64_t i = t0 + SAcc::col_of(n, e1, lane), j = w.j0 + SAcc::row_of_slot(r, lane);
          const bool expected = i < q_len && j < k_len && !rule.ref.visible(mask_head, i, j, q_len, k_len);
          if ((((hidden >> ((n * 2 + e1) * SAcc::kRowSlots + r)) & 1) != 0) != expected)
            return ::testing::AssertionFailure()
                   << "lane " << lane << " query " << i << " key " << j << " head " << head << " expected hidden "
                   << expected << " window (" << rule.rule.window_left << ", " << rule.rule.window_right
                   << ") sinks " << rule.rule.sinks << " prefix " << rule.rule.prefix << describe(rule.rule);
        }
  }
  return ::testing::AssertionSuccess();
}

// The sm_90a dQ writer's dq_turn_fast (masks without a left window or sinks) against dq_turn, for every (query
// tile, KV tile) pair the walk visits, both orders; masks with a left window or sinks take dq_turn itself.
TEST(BwdTurns, FastDenseTurnIsTheTurn) {
  using detail::SequenceMask;
  using detail::cuda::BwdKvWork;
  using detail::cuda::BwdParams;
  using detail::cuda::KvTilesOfRows;
  std::mt19937 gen(13);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
  for (int trial = 0; trial < 2000; ++trial) {
    SequenceMask mask;
    mask.sq = pick(1, 400);
    mask.sk = pick(1, 400);
    mask.window_left = pick(0, 4) ? -1 : pick(0, 150);
    mask.window_right = pick(0, 2) ? pick(0, 150) : -1;
    mask.sinks = pick(0, 4) ? 0 : pick(1, 80);
    const int bm = pick(0, 1) ? 64 : 16, bn = pick(0, 1) ? 128 : 64;
    BwdParams p;
    p.tile_keys = bn;
    p.dq_descending = mask.window_right >= 0 && pick(0, 3) > 0;
    for (int m = 0; m * bm < mask.sq; ++m) {
      const int t0 = m * bm;
      const KvTilesOfRows tiles = KvTilesOfRows::of(mask, t0, std::min<int64_t>(t0 + bm, mask.sq), bn);
      for (int n = 0; n * bn < mask.sk; ++n) {
        if (!tiles.contains(n)) continue;
        BwdKvWork w;
        w.n = n;
        const int fast = detail::cuda::dq_turn_fast(p, w, mask, 0, m, t0, bm, 0);
        ASSERT_EQ(fast, detail::cuda::dq_turn(p, w, mask, 0, m, t0, bm, 0)) << "trial " << trial << " m=" << m << " n=" << n;
      }
    }
  }
}

// The backward's hidden bits with the grid-table path on (the sm_90a backward) against ElementMask::visible: grids
// alone with their table (the fast path), and grids with other rules or without a table (the per-element loop).
TEST(BwdElementBits, GridTableOfSm90Fragments) {
  std::mt19937 rng(11);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  int fast = 0;
  for (int trial = 0; trial < 1200; ++trial) {
    const GridMask shape = random_grid_shape(rng);
    const int len = static_cast<int>(shape.tokens());
    RandomRule rule = uniform(0, 2) ? RandomRule{} : random_rule(rng, 1, len, len);
    add_grid(rule, rng, shape);
    BwdParams p;
    p.sparse.element = rule.ref;  // visible() per element needs unbounded windows as -1 (see RandomRule)
    p.sparse.element.grid_table = rule.rule.grid_table;
    fast += grid_table_alone(p.sparse.element);
    BwdKvWork w;
    w.seq.q_len = w.seq.k_len = len;
    for (int tile = 0; tile < 6; ++tile) {
      w.j0 = static_cast<int>(uniform(0, len / 16 + 1)) * 16;  // the warp's 16 keys, maybe past the sequence
      const int t0 = static_cast<int>(uniform(0, len / 64 + 1)) * 64;
      ASSERT_TRUE(bwd_bits_match(p, w, rule, 0, 0, t0))
          << "trial " << trial << " table path " << grid_table_alone(p.sparse.element);
    }
  }
  EXPECT_GT(fast, 300) << "too few trials on the table path";
}

// The backward's hidden bits of an S^T fragment for rules without a grid (windows in range, past every key or
// huge, per-head windows over 3 mask heads, sinks, prefix; documents in a quarter of the trials) through the
// sm_90a instantiation (kGridTable on: such rules take the per-element loop) against visible().
TEST(BwdElementBits, RulesWithoutGridOfSm90Fragments) {
  std::mt19937 rng(12);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int trial = 0; trial < 1500; ++trial) {
    const int q_len = static_cast<int>(uniform(1, 700)), k_len = static_cast<int>(uniform(1, 700));
    const RandomRule rule = random_rule(rng, 3, q_len, k_len);
    BwdParams p;
    p.sparse.heads = 3;
    p.sparse.hq = 6;
    p.sparse.element = rule.ref;  // visible() per element needs unbounded windows as -1 (see RandomRule)
    BwdKvWork w;
    w.seq.q_len = q_len, w.seq.k_len = k_len;
    for (int tile = 0; tile < 4; ++tile) {
      w.j0 = static_cast<int>(uniform(0, k_len / 16 + 1)) * 16;  // the warp's 16 keys, maybe past the sequence
      const int t0 = static_cast<int>(uniform(0, q_len / 64 + 1)) * 64;
      const int head = static_cast<int>(uniform(0, 5)), mask_head = head / 2;
      ASSERT_TRUE(bwd_bits_match(p, w, rule, head, mask_head, t0)) << "trial " << trial;
    }
  }
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
