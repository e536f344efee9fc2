// BlockMask: the CSR layout against plain loops, dense map round trips, and validation errors that name the
// field, what was expected and what was given.
#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "core/mask_policy.hpp"
#include "support/test_util.hpp"
#include "test_sparse_common.hpp"

namespace omniattn::testing {
namespace {

using Block = BlockMask::Block;

std::vector<Block> random_map(const BlockMask::Geometry& g, double density) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Block> map(static_cast<size_t>(g.batch * g.heads * g.q_blocks() * g.k_blocks()));
  for (auto& b : map) {
    const double x = u(rng());
    b = x < density / 2 ? Block::partial : x < density ? Block::full : Block::skipped;
  }
  return map;
}

const int32_t* data(const TensorView& t) { return t.ptr<const int32_t>(); }

TEST(BlockMask, LayoutMatchesTheDenseMap) {
  for (auto [q_tokens, k_tokens, bq, bk] : {std::array<int64_t, 4>{1, 1, 64, 64}, {239, 113, 64, 128},
                                            {113, 239, 128, 64}, {1000, 17, 128, 128}, {0, 50, 64, 64}}) {
    const BlockMask::Geometry g{2, 3, q_tokens, k_tokens, bq, bk};
    const auto map = random_map(g, 0.4);
    const BlockMask m = BlockMask::from_block_map(g, map);
    EXPECT_EQ(m.to_block_map(), map);
    const BlockMaskView v = m.view();
    validate(v);
    // Every (row, column) of the map appears in exactly the list its kind says, in both directions.
    const int64_t qbs = g.q_blocks(), kbs = g.k_blocks();
    int64_t listed = 0;
    for (int64_t s = 0; s < g.batch * g.heads; ++s)
      for (int64_t r = 0; r < qbs; ++r)
        for (int64_t c = 0; c < kbs; ++c) {
          const Block want = map[static_cast<size_t>((s * qbs + r) * kbs + c)];
          for (int kind = 0; kind < 2; ++kind) {
            const BlockList& kv = kind ? v.kv_full : v.kv_partial;
            const BlockList& q = kind ? v.q_full : v.q_partial;
            const int32_t* kv_row = data(kv.indices) + data(kv.offsets)[s * qbs + r];
            const int32_t* q_row = data(q.indices) + data(q.offsets)[s * kbs + c];
            const bool in_kv = std::binary_search(kv_row, kv_row + data(kv.num_blocks)[s * qbs + r], int32_t(c));
            const bool in_q = std::binary_search(q_row, q_row + data(q.num_blocks)[s * kbs + c], int32_t(r));
            const bool expected = want == (kind ? Block::full : Block::partial);
            EXPECT_EQ(in_kv, expected);
            EXPECT_EQ(in_q, expected);
          }
          listed += want != Block::skipped;
        }
    EXPECT_EQ(m.listed_blocks(), listed);
    EXPECT_EQ(v.kv_partial.indices.shape[0] + v.kv_full.indices.shape[0], listed);  // O(listed blocks) memory
  }
}

// Validation of a deliberately broken copy of a valid view.
struct Broken {
  BlockMask mask;
  std::vector<std::vector<int32_t>> copies;
  BlockMaskView view;
  Broken() {
    const BlockMask::Geometry g{1, 2, 300, 200, 64, 128};
    std::vector<Block> map(static_cast<size_t>(2 * 5 * 2), Block::full);
    map[1] = Block::partial;
    map[2] = Block::skipped;
    mask = BlockMask::from_block_map(g, map);
    view = mask.view();
    // Writable copies of every index tensor.
    for (BlockList* l : {&view.kv_partial, &view.kv_full, &view.q_partial, &view.q_full})
      for (TensorView* t : {&l->num_blocks, &l->offsets, &l->indices}) {
        copies.emplace_back(data(*t), data(*t) + std::max<int64_t>(t->numel(), 1));
        t->data = copies.back().data();
      }
  }
  int32_t* at(const TensorView& t) { return static_cast<int32_t*>(t.data); }
};

void expect_invalid(const BlockMaskView& v, const std::string& argument) {
  try {
    validate(v);
    ADD_FAILURE() << "no error; expected one about " << argument;
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
    EXPECT_FALSE(e.expected().empty());
    EXPECT_FALSE(e.given().empty());
  }
}

TEST(BlockMask, ValidationNamesTheBrokenField) {
  { Broken b; validate(b.view); }
  { Broken b; b.view.block_q = 32; expect_invalid(b.view, "block_mask.block_q"); }
  { Broken b; b.view.block_k = 256; expect_invalid(b.view, "block_mask.block_k"); }
  { Broken b; b.at(b.view.kv_full.indices)[0] = 7; expect_invalid(b.view, "block_mask.kv_full.indices"); }  // range
  { Broken b; b.at(b.view.kv_full.indices)[3] = -1; expect_invalid(b.view, "block_mask.kv_full.indices"); }
  {  // row 2 lists full blocks 0, 1: make them 1, 0 (unsorted), then 1, 1 (duplicate)
    Broken b;
    int32_t* row = b.at(b.view.kv_full.indices) + b.at(b.view.kv_full.offsets)[2];
    std::swap(row[0], row[1]);
    expect_invalid(b.view, "block_mask.kv_full.indices");
    row[1] = row[0];
    expect_invalid(b.view, "block_mask.kv_full.indices");
  }
  { Broken b; b.at(b.view.kv_full.num_blocks)[2] += 1; expect_invalid(b.view, "block_mask.kv_full.num_blocks"); }
  { Broken b; b.at(b.view.kv_partial.offsets)[0] = 1; expect_invalid(b.view, "block_mask.kv_partial.offsets"); }
  { Broken b; b.view.kv_full.indices.shape[0] -= 1; expect_invalid(b.view, "block_mask.kv_full.indices"); }
  { Broken b; b.view.kv_full.num_blocks.dtype = DType::f32; expect_invalid(b.view, "block_mask.kv_full.num_blocks"); }
  { Broken b; b.view.q_tokens = 100; expect_invalid(b.view, "block_mask.kv_partial.num_blocks"); }  // 2 q blocks
  {  // block (0, 1) listed both partial and full
    Broken b;
    b.at(b.view.kv_partial.indices)[0] = 0;
    expect_invalid(b.view, "block_mask.kv_full");
  }
  {  // the transposed lists disagree with the kv lists
    Broken b;
    int32_t* col = b.at(b.view.q_full.indices);
    std::swap(col[0], col[1]);
    expect_invalid(b.view, "block_mask.q_full.indices");
    std::swap(col[0], col[1]);
    b.at(b.view.q_full.indices)[0] = 1;  // {1, 2, 3, 4}: sorted and in range, but not the transpose
    expect_invalid(b.view, "block_mask.q_full");
  }
  {
    Broken b;
    const int32_t windows[3] = {1, 0, 0};
    b.view.element.head_windows = {windows, 3};  // 2 heads need 6 entries
    expect_invalid(b.view, "block_mask.element.head_windows");
  }
  {
    Broken b;
    std::vector<int32_t> doc(300, 0);
    b.view.element.q_document = b.view.element.k_document = {doc.data(), 300};  // k_document needs 200
    expect_invalid(b.view, "block_mask.element.k_document");
  }
  {
    Broken b;
    b.view.element.grid.kind = GridMask::Kind::neighborhood;
    b.view.element.grid.shape[0] = 300;
    expect_invalid(b.view, "block_mask.element.grid");  // 300 grid tokens, 200 keys
  }
  {
    Broken b;
    std::vector<int32_t> load = kv_block_load(b.view);
    b.view.host_kv_load = {load.data(), static_cast<int64_t>(load.size())};
    validate(b.view);
    load[1] += 1;
    expect_invalid(b.view, "block_mask.host_kv_load");
    b.view.host_kv_load.size -= 1;
    expect_invalid(b.view, "block_mask.host_kv_load");
  }
  EXPECT_THROW(BlockMask::from_block_map({1, 1, 10, 10, 64, 64}, std::vector<Block>(2)), Error);
  EXPECT_THROW(BlockMask::from_block_map({1, 1, 10, 10, 100, 64}, std::vector<Block>(1)), Error);
}

// kv_block_load: per KV block, the largest count of listing query blocks over the (batch, head) rows.
TEST(BlockMask, KvBlockLoadIsTheLongestColumn) {
  const BlockMask::Geometry g{2, 3, 700, 500, 64, 128};
  const std::vector<Block> map = random_map(g, 0.4);
  const BlockMask m = BlockMask::from_block_map(g, map);
  const std::vector<int32_t> load = kv_block_load(m.view());
  ASSERT_EQ(static_cast<int64_t>(load.size()), g.k_blocks());
  for (int64_t kb = 0; kb < g.k_blocks(); ++kb) {
    int32_t most = 0;
    for (int64_t bh = 0; bh < g.batch * g.heads; ++bh) {
      int32_t listed = 0;
      for (int64_t qb = 0; qb < g.q_blocks(); ++qb)
        listed += map[static_cast<size_t>((bh * g.q_blocks() + qb) * g.k_blocks() + kb)] != Block::skipped;
      most = std::max(most, listed);
    }
    EXPECT_EQ(load[static_cast<size_t>(kb)], most) << "KV block " << kb;
  }
}

TEST(BlockMask, AttentionRefusesAMismatchedMask) {
  const int64_t B = 2, S = 70, H = 4, HKV = 2, D = 8;
  HostTensor q = random_normal(DType::f32, {B, S, H, D}), k = random_normal(DType::f32, {B, S, HKV, D}),
             v = random_normal(DType::f32, {B, S, HKV, D}), out(DType::f32, {B, S, H, D});
  auto expect_refused = [&](const BlockMask& m, const std::string& argument, Backend backend = Backend::cpu) {
    AttentionOptions o;
    o.backend = backend;
    o.block_mask = m.view();
    try {
      attention_forward(q, k, v, {out, std::nullopt}, o);
      ADD_FAILURE() << "no error; expected one about " << argument;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
    }
  };
  expect_refused(sparse::sliding_window({1, 1, 71, 70, 64, 64}, 5, 0), "options.block_mask.q_tokens");
  expect_refused(sparse::sliding_window({1, 1, 70, 69, 64, 64}, 5, 0), "options.block_mask.k_tokens");
  expect_refused(sparse::sliding_window({3, 1, 70, 70, 64, 64}, 5, 0), "options.block_mask.batch");
  expect_refused(sparse::sliding_window({1, 3, 70, 70, 64, 64}, 5, 0), "options.block_mask.heads");
  BlockMask bad_order = sparse::sliding_window({1, 1, 70, 70, 64, 64}, 5, 0);
  bad_order.element().grid.kind = GridMask::Kind::axial;
  bad_order.element().grid.shape[0] = 70;
  bad_order.set_token_order(std::vector<int32_t>(70, 0));
  expect_refused(bad_order, "options.block_mask.element.token_order");
  for (auto [batch, heads] : {std::pair<int64_t, int64_t>{1, 1}, {2, 2}, {2, 4}}) {  // accepted shapes
    AttentionOptions o;
    const BlockMask keep = sparse::sliding_window({batch, heads, 70, 70, 64, 64}, 5, 0);
    o.block_mask = keep.view();
    EXPECT_NO_THROW(attention_forward(q, k, v, {out, std::nullopt}, o));
  }
}

TEST(ElementMask, WindowRuleIsTheAttentionOptionsRule) {
  std::uniform_int_distribution<int64_t> len(1, 90), win(-1, 20), sink(0, 5);
  for (int trial = 0; trial < 200; ++trial) {
    ElementMask e;
    e.window_left = win(rng());
    e.window_right = win(rng());
    e.sinks = sink(rng());
    const int64_t sq = len(rng()), sk = len(rng());
    const detail::SequenceMask s{sq, sk, e.window_left, e.window_right, e.sinks};
    for (int64_t i = 0; i < sq; ++i)
      for (int64_t j = 0; j < sk; ++j) ASSERT_EQ(e.visible(0, i, j, sq, sk), s.visible(i, j)) << i << " " << j;
  }
}

// row_ranges (the per-row form the generators and forward kernels use) against visible, key by key; windows,
// sinks and prefixes past the sequence included (huge ones are unbounded: visible's sum would overflow).
TEST(ElementMask, RowRangesAreTheWindowSinksPrefixRule) {
  constexpr int64_t kHuge = INT64_MAX;
  std::uniform_int_distribution<int64_t> len(1, 90), win(-1, 100), small(0, 12), pick(0, 5);
  auto huge_or = [&](int64_t x) { return pick(rng()) == 0 ? kHuge : x; };
  for (int trial = 0; trial < 2000; ++trial) {
    ElementMask e;
    e.window_left = huge_or(win(rng()));
    e.window_right = huge_or(win(rng()));
    e.sinks = huge_or(small(rng()));
    e.prefix = pick(rng()) < 3 ? 0 : huge_or(small(rng()));
    std::vector<int32_t> windows = {static_cast<int32_t>(win(rng())), INT32_MAX, 3};
    if (pick(rng()) == 0) e.head_windows = {windows.data(), 3};
    ElementMask ref = e;  // visible() with the huge windows as unbounded
    if (ref.window_left == kHuge) ref.window_left = -1;
    if (ref.window_right == kHuge) ref.window_right = -1;
    const int64_t sq = len(rng()), sk = len(rng());
    for (int64_t i = 0; i < sq; ++i) {
      const ElementMask::RowRanges r = e.row_ranges(0, i, sq, sk);
      ASSERT_TRUE(0 <= r.front && r.front <= sk && 0 <= r.begin && r.begin <= sk && 0 <= r.end && r.end <= sk);
      for (int64_t j = 0; j < sk; ++j)
        ASSERT_EQ(j < r.front || (r.begin <= j && j < r.end), ref.visible(0, i, j, sq, sk))
            << "trial " << trial << " i=" << i << " j=" << j;
    }
  }
}

TEST(ElementMask, NeighborhoodAxisMatchesTheClassicDefinition) {
  for (int64_t L : {1, 7, 16, 23})
    for (int64_t k = 1; k <= L; ++k)
      for (int64_t dil = 1; k * dil <= L; ++dil)
        for (int64_t stride = 1; stride <= k; ++stride)
          for (bool causal : {false, true}) {
            GridMask g;
            g.kind = GridMask::Kind::neighborhood;
            g.shape[0] = L;
            g.kernel[0] = k;
            g.dilation[0] = dil;
            g.stride[0] = stride;
            g.causal[0] = causal;
            for (int64_t x = 0; x < L; ++x) {
              int64_t count = 0;
              for (int64_t y = 0; y < L; ++y) {
                ASSERT_EQ(g.axis_visible(0, x, y), na_axis(L, k, dil, stride, causal, x, y))
                    << "L=" << L << " k=" << k << " dil=" << dil << " stride=" << stride << " causal=" << causal
                    << " x=" << x << " y=" << y;
                count += g.axis_visible(0, x, y);
              }
              if (!causal) EXPECT_EQ(count, k);  // a full window everywhere (shifted at the borders)
            }
          }
}

// make_grid_table's contract, per field and without the kernels' bit tricks: key j is visible to query i iff every
// field of key(j) lies between those of the window's ends (neighborhood), or key(j) and key(i) differ in at most one
// field, not above key(i)'s on a causal axis (axial). Random 1-D to 3-D grids, dilations, strides, causal axes,
// in grid order or a random one.
TEST(ElementMask, GridTableIsTheGridRule) {
  std::uniform_int_distribution<int64_t> pick(0, 1 << 20);
  auto uniform = [&](int64_t lo, int64_t hi) { return lo + pick(rng()) % (hi - lo + 1); };
  for (int trial = 0; trial < 400; ++trial) {
    GridMask g;
    g.kind = uniform(0, 2) ? GridMask::Kind::neighborhood : GridMask::Kind::axial;
    g.ndim = static_cast<int>(uniform(1, 3));
    for (int a = 0; a < g.ndim; ++a) {
      g.shape[a] = uniform(1, g.ndim == 1 ? 60 : g.ndim == 2 ? 12 : 6);
      g.kernel[a] = uniform(1, g.shape[a]);
      g.dilation[a] = uniform(1, g.shape[a] / g.kernel[a]);
      g.stride[a] = uniform(1, g.kernel[a]);
      g.causal[a] = uniform(0, 2) == 0;
    }
    const int64_t n = g.tokens();
    std::vector<int32_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng());
    ElementMask e;
    e.grid = g;
    if (uniform(0, 1)) e.token_order = {order.data(), n};
    const std::vector<int32_t> table = make_grid_table(g, e.token_order);
    const GridMask::KeyLayout layout = g.key_layout();
    ASSERT_NE(layout.guard, 0u);
    const int64_t stride = g.kind == GridMask::Kind::axial ? 1 : 3;  // (key) or (key, lo, hi) per position
    ASSERT_EQ(static_cast<int64_t>(table.size()), stride * n);
    auto field = [&](int64_t entry, int a) { return static_cast<uint32_t>(table[entry]) & layout.field[a]; };
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        bool in = true;
        if (g.kind == GridMask::Kind::neighborhood) {
          for (int a = 0; a < g.ndim; ++a)
            in = in && field(3 * i + 1, a) <= field(3 * j, a) && field(3 * j, a) <= field(3 * i + 2, a);
        } else {
          int differ = 0;
          for (int a = 0; a < g.ndim; ++a)
            if (field(j, a) != field(i, a)) differ += g.causal[a] && field(j, a) > field(i, a) ? 2 : 1;
          in = differ <= 1;
        }
        ASSERT_EQ(in, e.visible(0, i, j, n, n)) << "trial " << trial << " i=" << i << " j=" << j;
      }
  }
}

// BlockMask hands out its table with the grid and order it was built for, never a stale one; validate() requires a
// set table to be exactly make_grid_table's; grids whose fields need more than 32 bits have none.
TEST(ElementMask, GridTableOfABlockMask) {
  GridMask g = grid_rule(GridMask::Kind::neighborhood, {10, 12}, {3, 5});
  g.dilation[1] = 2;
  const std::vector<int32_t> order = sparse::tile_order(g, {4, 4, 1});
  BlockMask m = sparse::neighborhood({1, 1, 120, 120, 64, 64}, g, order);
  BlockMaskView v = m.view();
  const std::vector<int32_t> want = make_grid_table(g, {order.data(), 120});
  ASSERT_EQ(v.element.grid_table.size, 360);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), v.element.grid_table.data));
  validate(v);

  std::vector<int32_t> bad = want;
  bad[200] ^= 1;
  v.element.grid_table = {bad.data(), 360};
  expect_invalid(v, "block_mask.element.grid_table");
  v.element.grid_table = {want.data(), 120};
  expect_invalid(v, "block_mask.element.grid_table");
  const BlockMask window = sparse::sliding_window({1, 1, 120, 120, 64, 64}, 5, 0);
  BlockMaskView no_grid = window.view();
  no_grid.element.grid_table = {want.data(), 360};
  expect_invalid(no_grid, "block_mask.element.grid_table");

  m.element().grid.kernel[0] = 5;  // a changed rule: no table until one is built for it
  EXPECT_TRUE(m.view().element.grid_table.empty());
  m.set_token_order(order);
  EXPECT_EQ(m.view().element.grid_table.size, 360);
  validate(m.view());
  m.element().grid.kind = GridMask::Kind::axial;
  EXPECT_TRUE(m.view().element.grid_table.empty());
  m.set_token_order({});
  EXPECT_EQ(m.view().element.grid_table.size, 120);
  validate(m.view());

  const GridMask wide = grid_rule(GridMask::Kind::axial, {40000, 40000});  // 16 + 16 value bits and two guards
  EXPECT_EQ(wide.key_layout().guard, 0u);
  EXPECT_TRUE(make_grid_table(wide, {}).empty());
  const GridMask line = grid_rule(GridMask::Kind::axial, {INT32_MAX});  // 31 value bits and the guard: fits
  EXPECT_EQ(line.key_layout().guard, 1u << 31);
  EXPECT_EQ(line.key_layout().field[0], (1u << 31) - 1);
}

}  // namespace
}  // namespace omniattn::testing
