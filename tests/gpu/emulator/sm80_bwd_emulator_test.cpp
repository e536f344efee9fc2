// The real sm_80 backward kernel code (preprocess, main, postprocess, d sink), run on the CPU under the host
// emulation, against the float64 reference backward: fragment layouts of the five GEMMs, the P^T / dS^T round
// trip through shared memory, masks, query-block ranges, the dQ accumulation and the deterministic mode's
// semaphore order (the emulator aborts when a CTA would wait for one that runs after it). Shapes are small:
// every CUDA thread is a fiber.
#include <algorithm>
#include <cstring>
#include <random>

#include "core/mask_policy.hpp"
#include "cuda/bwd/bwd_arguments.hpp"
#include "cuda/bwd/bwd_tiles.hpp"
#include "gpu/emulator/emulated_bwd_kernels.hpp"
#include "gpu/sm80_bwd_case.hpp"
#include "omniattn/sparse.hpp"

namespace omniattn::testing {
namespace {

BwdResult emulate_backward(const Sm80Case& c, const BwdInputs& in, bool deterministic = false, bool check = true,
                           int dq_partials = 1) {
  BwdResult res = bwd_outputs_like(c, in);
  std::optional<TensorView> dsink;
  if (c.sink_logits) dsink = res.dsink.view();
  const auto p = detail::make_backward_problem(in.fwd.q, in.fwd.k, in.fwd.v, in.out, in.lse, in.dout,
                                               {res.dq, res.dk, res.dv, dsink}, bwd_host_options(c, in, deterministic));
  const auto tuning = detail::cuda::bwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv));
  EXPECT_GT(tuning.d, 0) << c.describe();
  auto launch = detail::cuda::make_bwd_launch(p, tuning, dq_partials);
  launch.use_host_metadata();
  std::vector<uint8_t> workspace(launch.workspace_bytes + 256, 0xFF);  // NaN: every read must be written first
  launch.bind_workspace(workspace.data() + (256 - reinterpret_cast<uintptr_t>(workspace.data()) % 256) % 256);
  if (!launch.empty())
    EXPECT_TRUE(detail::cuda::emulate_bwd_sm80(p.dtype, static_cast<int>(p.d), static_cast<int>(p.dv), launch.params));
  if (check) check_bwd_against_reference(c, in, res);
  return res;
}

BwdResult emulate_backward(const Sm80Case& c, bool deterministic = false, const BlockMask* mask = nullptr) {
  return emulate_backward(c, make_bwd_inputs(c, mask), deterministic);
}

Sm80Case small(int64_t sq, int64_t sk) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.sq = sq;
  c.sk = sk;
  return c;
}

// The query-block range of a KV tile and the KV-tile set of a query block are the same relation, and both
// equal "SequenceMask::classify is not empty" (the main loop and the deterministic order rely on it).
TEST(Sm80BwdTiles, RangesAgreeWithClassify) {
  using detail::SequenceMask;
  using detail::cuda::KvTilesOfRows;
  using detail::cuda::QueryBlocksOfTile;
  std::mt19937 gen(7);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
  for (int trial = 0; trial < 3000; ++trial) {
    SequenceMask mask;
    mask.sq = pick(1, 300);
    mask.sk = pick(1, 300);
    mask.window_left = pick(0, 2) ? pick(0, 150) : -1;
    mask.window_right = pick(0, 2) ? pick(0, 150) : -1;
    mask.sinks = pick(0, 1) ? pick(0, 80) : pick(0, 4) == 0 ? int64_t{1} << 40 : 0;  // (KvTilesOfRows divides in 32 bits)
    const int bm = pick(0, 1) ? 64 : 16, bn = pick(0, 1) ? 128 : 64;
    const int m_blocks = static_cast<int>((mask.sq + bm - 1) / bm), n_tiles = static_cast<int>((mask.sk + bn - 1) / bn);
    for (int n = 0; n < n_tiles; ++n) {
      const QueryBlocksOfTile blocks = QueryBlocksOfTile::of(mask, n, bm, bn);
      for (int m = 0; m < m_blocks; ++m) {
        const int64_t i0 = int64_t{m} * bm, i1 = std::min<int64_t>(i0 + bm, mask.sq);
        const bool seen = mask.classify(i0, i1, int64_t{n} * bn, int64_t{n + 1} * bn) != SequenceMask::Tile::empty;
        bool brute = false;  // some visible pair, element by element
        for (int64_t i = i0; i < i1 && !brute; ++i)
          for (int64_t j = int64_t{n} * bn; j < std::min<int64_t>(int64_t{n + 1} * bn, mask.sk) && !brute; ++j)
            brute = mask.visible(i, j);
        const KvTilesOfRows tiles = KvTilesOfRows::of(mask, i0, i1, bn);
        ASSERT_EQ(seen, brute) << "classify, trial " << trial;
        ASSERT_EQ(tiles.contains(n), brute) << "KvTilesOfRows, trial " << trial << " m=" << m << " n=" << n;
        ASSERT_EQ(m >= blocks.first && m < blocks.last, brute) << "QueryBlocksOfTile, trial " << trial;
      }
    }
  }
}

TEST(Sm80BwdEmulated, Basic) { emulate_backward(small(64, 64)); }

TEST(Sm80BwdEmulated, HeadDimsAndDtypes) {
  const int64_t dims[][2] = {{64, 64}, {96, 96}, {128, 128}, {192, 128}, {192, 192}, {256, 256}};
  for (const auto& hd : dims) {
    Sm80Case c = small(70, 90);
    c.d = hd[0];
    c.dv = hd[1];
    c.causal = hd[0] == 128 || hd[0] == 192;
    emulate_backward(c);
  }
  Sm80Case c = small(100, 100);
  c.dtype = DType::f16;
  c.d = 128;
  emulate_backward(c);
}

TEST(Sm80BwdEmulated, OddLengthsAndCausal) {
  for (int64_t n : {1, 17, 113})
    for (bool causal : {false, true}) {
      Sm80Case c = small(n, n + 50);
      c.causal = causal;
      emulate_backward(c);
      std::swap(c.sq, c.sk);
      emulate_backward(c);
    }
}

TEST(Sm80BwdEmulated, WindowsSinksVarlen) {
  Sm80Case c;
  c.hq = c.hkv = 1;
  c.q_lens = {0, 17, 150, 3};
  c.k_lens = {9, 0, 140, 70};
  c.causal = true;
  c.window_left = 30;
  c.sinks = 3;
  emulate_backward(c);
  c.window_right = 10;
  c.causal = false;
  emulate_backward(c);
}

TEST(Sm80BwdEmulated, GqaScoreModsSinkLogitsSeqused) {
  Sm80Case c;
  c.batch = 2;
  c.hq = 3;
  c.hkv = 1;
  c.sq = 20;
  c.sk = 150;
  c.causal = true;
  c.softcap = 1.5;
  c.alibi = Sm80Case::Alibi::per_batch;
  c.sink_logits = true;
  c.seqused_k = {60, 0};  // keys past these are NaN: never read; their dK/dV rows are 0
  emulate_backward(c);
}

TEST(Sm80BwdEmulated, SevenQueryHeadsOnOneKvHead) {
  Sm80Case c = small(40, 70);
  c.hq = 7;
  c.causal = true;
  c.sink_logits = true;
  emulate_backward(c);
}

TEST(Sm80BwdEmulated, MaskedTilesAreNeverLoaded) {
  Sm80Case c = small(16, 700);
  c.causal = true;
  c.window_left = 100;
  c.sinks = 4;
  c.poison_keys_begin = 128;  // NaN keys that no query sees: a load would turn the gradients NaN
  c.poison_keys_end = 584 - 128;
  emulate_backward(c);
}

TEST(Sm80BwdEmulated, SinksAcrossTilesEmptyRowsNegativeScale) {
  Sm80Case c = small(160, 140);  // Sq > Sk: the first rows see nothing
  c.causal = true;
  c.window_left = 20;
  c.sinks = 70;  // spans two KV tiles of 64 (d = 256) / one of 128
  c.sink_logits = true;
  emulate_backward(c);
  c.sinks = 0;
  c.window_left = -1;
  c.sink_logits = false;
  c.scale = -0.2;
  emulate_backward(c);
}

// Two dQ accumulators (BwdParams::dq_partials, the sm_90a D = 64 deterministic layout): the sm_80 kernel adds into
// the first only, and the postprocess adds the second, which must therefore be zeroed by the preprocess (the
// workspace starts as NaN) and lie apart from every other workspace array. (That the sm_90a writer fills it is
// SparseBackward / Sm90Backward's determinism and reference checks on the GPU.)
TEST(Sm80BwdEmulated, SecondDqAccumulatorIsZeroed) {
  Sm80Case c = small(130, 150);
  c.hq = 2;
  c.causal = true;
  emulate_backward(c, make_bwd_inputs(c), /*deterministic=*/true, /*check=*/true, /*dq_partials=*/2);
}

// Deterministic mode: the emulator runs CTAs in dispatch order and aborts if a CTA would wait on a later one;
// two runs give the same bits, and the gradients pass the same tolerance.
TEST(Sm80BwdEmulated, DeterministicOrder) {
  Sm80Case c;
  c.batch = 1;
  c.hq = 2;
  c.hkv = 1;
  c.sq = 130;
  c.sk = 260;
  for (int mask = 0; mask < 3; ++mask) {
    c.causal = mask == 1;  // 0: ascending order, 1: descending, 2: window + sinks (descending)
    c.window_left = mask == 2 ? 70 : -1;
    c.window_right = mask == 2 ? 10 : -1;
    c.sinks = mask == 2 ? 5 : 0;
    const BwdInputs in = make_bwd_inputs(c);
    const BwdResult first = emulate_backward(c, in, /*deterministic=*/true);
    const BwdResult second = emulate_backward(c, in, /*deterministic=*/true, /*check=*/false);
    EXPECT_TRUE(same_gradients(first, second, false)) << c.describe();
  }
}

// More KV tiles per head than the deterministic launch chunk (8 tiles, BwdKvScheduler): the CTAs start chunk by
// chunk over the heads, both dQ orders; a CTA that started before the tile it waits for would hang the emulation.
TEST(Sm80BwdEmulated, DeterministicChunkedLaunchOrder) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 2;
  c.sq = 70;
  c.sk = 1300;  // 11 tiles of 128 keys: one whole chunk and a shorter one per head
  for (bool causal : {false, true}) {
    c.causal = causal;  // ascending order, descending order
    const BwdInputs in = make_bwd_inputs(c);
    const BwdResult first = emulate_backward(c, in, /*deterministic=*/true);
    const BwdResult second = emulate_backward(c, in, /*deterministic=*/true, /*check=*/false);
    EXPECT_TRUE(same_gradients(first, second, false)) << c.describe();
  }
}

// ---- Block-sparse masks (options.block_mask): the walk of the transposed lists, partial / full blocks, 64-key
// mask blocks in the 128-key tiles of d <= 128 (half-filled tiles), several KV tiles per mask block (d = 256),
// per-head masks with GQA, and the deterministic order over the listed tiles only.
namespace sparse_cases {

using Block = BlockMask::Block;

// A random block map: each block skipped / partial / full with the given odds, except the KV blocks in
// `unlisted` (listed by no query block: their keys are poisoned by the cases, so a load would show) and the
// query blocks in `empty_rows` (list nothing: their rows see no key, dQ = 0).
BlockMask random_blocks(const BlockMask::Geometry& g, const ElementMask& element, std::vector<int64_t> unlisted = {},
                        std::vector<int64_t> empty_rows = {}) {
  std::vector<Block> map(static_cast<size_t>(g.batch * g.heads * g.q_blocks() * g.k_blocks()));
  std::uniform_int_distribution<int> kind(0, 2);
  size_t at = 0;
  for (int64_t bh = 0; bh < g.batch * g.heads; ++bh)
    for (int64_t qb = 0; qb < g.q_blocks(); ++qb)
      for (int64_t kb = 0; kb < g.k_blocks(); ++kb, ++at) {
        const bool off = std::count(unlisted.begin(), unlisted.end(), kb) > 0 ||
                         std::count(empty_rows.begin(), empty_rows.end(), qb) > 0;
        map[at] = off ? Block::skipped : static_cast<Block>(kind(rng()));
      }
  return BlockMask::from_block_map(g, map, element);
}

ElementMask window(int64_t left, int64_t right, int64_t sinks = 0) {
  ElementMask e;
  e.window_left = left;
  e.window_right = right;
  e.sinks = sinks;
  return e;
}

Sm80Case sparse_case(int64_t d, int64_t sq, int64_t sk, int64_t hq, int64_t hkv) {
  Sm80Case c;
  c.batch = 1;
  c.d = d;
  c.sq = sq;
  c.sk = sk;
  c.hq = hq;
  c.hkv = hkv;
  return c;
}

}  // namespace sparse_cases

// count_in (the deterministic order's count over listed KV blocks) against contains(), tile by tile.
TEST(Sm80BwdTiles, CountInAgreesWithContains) {
  using detail::SequenceMask;
  using detail::cuda::KvTilesOfRows;
  std::mt19937 gen(11);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
  for (int trial = 0; trial < 2000; ++trial) {
    SequenceMask mask;
    mask.sq = pick(1, 300);
    mask.sk = pick(1, 300);
    mask.window_left = pick(0, 2) ? pick(0, 150) : -1;
    mask.window_right = pick(0, 2) ? pick(0, 150) : -1;
    mask.sinks = pick(0, 1) ? pick(0, 80) : 0;
    const int i0 = pick(0, static_cast<int>(mask.sq) - 1), i1 = std::min<int>(i0 + 64, static_cast<int>(mask.sq));
    const KvTilesOfRows tiles = KvTilesOfRows::of(mask, i0, i1, 64);
    const int a = pick(-2, 8), b = pick(-2, 8);
    int brute = 0;
    for (int n = std::max(a, 0); n < b; ++n) brute += tiles.contains(n);
    ASSERT_EQ(tiles.count_in(a, b), brute) << "trial " << trial;
  }
}

TEST(Sm80BwdSparse, RandomBlocksEveryTileShape) {
  using namespace sparse_cases;
  // (d, block_q, block_k): 64-key blocks in 128-key tiles (d <= 128: half-filled tiles), whole tiles, and two
  // 64-key tiles per 128-key block (d = 256); 64-row tiles per 64- or 128-row mask block.
  const int64_t shapes[][3] = {{64, 64, 64}, {128, 128, 128}, {128, 64, 128}, {64, 128, 64}, {256, 128, 128}, {256, 64, 64}};
  for (const auto& s : shapes) {
    Sm80Case c = sparse_case(s[0], 130, 200, 2, 1);
    const BlockMask m = random_blocks({1, 1, c.sq, c.sk, s[1], s[2]}, window(50, 20), /*unlisted=*/{1});
    c.poison_keys_begin = s[2];  // KV block 1: listed by nobody, never loaded, dK = dV = 0
    c.poison_keys_end = 2 * s[2];
    emulate_backward(c, false, &m);
  }
}

TEST(Sm80BwdSparse, OptionsMaskOnTopAndEmptyRows) {
  using namespace sparse_cases;
  for (int64_t d : {64, 256}) {
    Sm80Case c = sparse_case(d, 190, 190, 1, 1);
    c.causal = true;  // listed blocks above the diagonal are skipped by the walk; the rest masked as usual
    c.window_left = 90;
    c.sinks = 3;
    const BlockMask m = random_blocks({1, 1, c.sq, c.sk, 64, 128}, window(-1, -1, 0), {}, /*empty_rows=*/{1});
    const BwdResult r = emulate_backward(c, false, &m);
    for (int64_t i = 64 * c.hq * d; i < 128 * c.hq * d; ++i)  // query block 1 lists nothing: dQ exactly 0
      ASSERT_EQ(r.dq.get(i), 0.0) << "dq element " << i;
  }
}

TEST(Sm80BwdSparse, GeneratorsSinkLogitsSoftcap) {
  using namespace sparse_cases;
  {
    Sm80Case c = sparse_case(128, 260, 260, 1, 1);
    const BlockMask m = sparse::sliding_window({1, 1, 260, 260, 64, 64}, 70, 0);
    emulate_backward(c, false, &m);
  }
  {
    Sm80Case c = sparse_case(64, 177, 177, 2, 2);
    c.dtype = DType::f16;
    c.sink_logits = true;
    c.softcap = 3.0;
    const BlockMask m = sparse::documents({1, 1, 177, 177, 64, 128}, {17, 64, 1, 95}, true);
    emulate_backward(c, false, &m);
  }
  {
    Sm80Case c = sparse_case(256, 150, 150, 1, 1);
    const BlockMask m = sparse::sinks_window({1, 1, 150, 150, 128, 128}, 4, 40);
    emulate_backward(c, false, &m);
  }
}

TEST(Sm80BwdSparse, PerHeadMasksWithGqa) {
  using namespace sparse_cases;
  // heads == Hq: every query head of a KV head walks its own list.
  Sm80Case c = sparse_case(64, 130, 150, 4, 2);
  c.batch = 2;
  const BlockMask own = random_blocks({2, 4, 130, 150, 64, 64}, window(30, 30));
  emulate_backward(c, false, &own);
  // heads == Hkv: the query heads of a KV head share it (per-KV-head windows).
  const BlockMask shared = sparse::head_windows({1, 2, 130, 150, 128, 64}, {{{40, 0, 2}}, {{-1, 5, 0}}});
  emulate_backward(c, false, &shared);
}

TEST(Sm80BwdSparse, VarlenPerSequenceMasks) {
  using namespace sparse_cases;
  Sm80Case c;
  c.hq = 3;
  c.hkv = 1;
  c.q_lens = {50, 0, 130};
  c.k_lens = {60, 10, 129};
  const BlockMask m = random_blocks({3, 1, 130, 129, 64, 64}, window(-1, 0));  // partial blocks causal
  emulate_backward(c, false, &m);
}

// Deterministic mode over sparse walks: the emulator runs CTAs in dispatch order and aborts if a CTA waits for a
// turn that no earlier CTA gives (a rank that counts a tile which does not list the block, or that the options
// mask hides, would do that). Bitwise repeatability itself is a GPU test (the emulator is sequential).
TEST(Sm80BwdSparse, DeterministicOrder) {
  using namespace sparse_cases;
  struct Variant {
    int64_t d, bq, bk;
    bool causal;
    ElementMask element;
    int64_t heads;
  };
  const Variant variants[] = {
      {64, 64, 64, false, window(40, 40), 1},    // ascending, half-filled tiles, shared mask
      {64, 64, 64, true, window(-1, -1), 4},     // descending (options causal), per-head masks
      {256, 128, 128, false, window(60, 0), 2},  // descending (element window_right), 2 tiles per KV block
      {128, 128, 64, false, window(-1, -1), 4},  // ascending, per-head masks, 2 query tiles per block
  };
  for (const Variant& v : variants) {
    Sm80Case c = sparse_case(v.d, 130, 200, 4, 2);
    c.causal = v.causal;
    const BlockMask m = random_blocks({1, v.heads, c.sq, c.sk, v.bq, v.bk}, v.element);
    emulate_backward(c, /*deterministic=*/true, &m);
  }
}

// Split walks (bwd_split_plan.hpp): runs of 1 or 2 mask blocks cut every tile listed by more blocks; each run
// (a mutation that drops a tile's last run in the split-store fails this)
// writes its f32 slot and the split-store kernel sums them (the workspace starts as NaN: a slot read before it is
// written would show). Every tile shape, per-head lists with GQA, varlen (tiles past a sequence's keys), sinks.
TEST(Sm80BwdSparse, SplitWalks) {
  using namespace sparse_cases;
  struct Reset {
    ~Reset() { detail::cuda::set_bwd_order_override({}); }
  } reset;
  for (int run : {1, 2}) {
    detail::cuda::set_bwd_order_override({.split_run = run});
    const int64_t shapes[][3] = {{64, 64, 64}, {256, 128, 128}};
    for (const auto& s : shapes) {
      Sm80Case c = sparse_case(s[0], 230, 200, 2, 1);
      const BlockMask m = random_blocks({1, 1, c.sq, c.sk, s[1], s[2]}, window(90, 20));
      emulate_backward(c, false, &m);
    }
    if (run == 2) continue;  // (CI time: the rest once)
    Sm80Case g = sparse_case(64, 200, 150, 4, 2);
    g.batch = 2;
    g.sink_logits = true;
    const BlockMask own = random_blocks({2, 4, 200, 150, 64, 64}, window(30, 30, 2));
    emulate_backward(g, false, &own);
    Sm80Case v;
    v.hq = 2;
    v.hkv = 1;
    v.q_lens = {150, 0, 230};
    v.k_lens = {60, 10, 229};
    const BlockMask sinks = sparse::sinks_window({1, 1, 230, 229, 64, 64}, 4, 60);
    emulate_backward(v, false, &sinks);
  }
}

// plan_bwd_split on random loads: every tile's units cover [0, q_blocks) exactly once, runs of split tiles first
// with consecutive slots, and a tile is split exactly when its load exceeds the run length.
TEST(BwdSplitPlan, UnitsPartitionEveryTile) {
  std::mt19937 gen(5);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
  for (int trial = 0; trial < 500; ++trial) {
    const int q_blocks = pick(1, 300), k_blocks = pick(1, 40), per_block = pick(1, 2);
    const int n_tiles = k_blocks * per_block - pick(0, per_block - 1);
    std::vector<int32_t> load(static_cast<size_t>(k_blocks));
    for (auto& l : load) l = pick(0, 5) == 0 ? q_blocks : pick(0, std::min(q_blocks, 12));
    const int forced = pick(0, 1) ? 0 : pick(1, 20);
    const detail::cuda::BwdSplitPlan plan = detail::cuda::plan_bwd_split(load, n_tiles, per_block, q_blocks, forced);
    if (plan.units.empty()) {
      EXPECT_TRUE(plan.split_tiles.empty() && plan.slots == 0);
      continue;
    }
    std::vector<std::vector<std::pair<int, int>>> ranges(static_cast<size_t>(n_tiles));
    std::vector<int> slot_seen(static_cast<size_t>(plan.slots), 0);
    bool whole_seen = false;
    for (const auto& u : plan.units) {
      ASSERT_TRUE(u.tile >= 0 && u.tile < n_tiles && u.qb_lo < u.qb_hi) << "trial " << trial;
      ranges[static_cast<size_t>(u.tile)].push_back({u.qb_lo, u.qb_hi});
      if (u.slot >= 0) {
        EXPECT_FALSE(whole_seen) << "runs come first";
        ASSERT_LT(u.slot, plan.slots);
        ++slot_seen[static_cast<size_t>(u.slot)];
      } else {
        whole_seen = true;
      }
    }
    EXPECT_TRUE(std::all_of(slot_seen.begin(), slot_seen.end(), [](int n) { return n == 1; })) << "trial " << trial;
    for (int n = 0; n < n_tiles; ++n) {
      auto& r = ranges[static_cast<size_t>(n)];
      std::sort(r.begin(), r.end());
      ASSERT_FALSE(r.empty());
      EXPECT_EQ(r.front().first, 0);
      EXPECT_EQ(r.back().second, q_blocks);
      for (size_t i = 1; i < r.size(); ++i) EXPECT_EQ(r[i].first, r[i - 1].second) << "trial " << trial;
    }
    int slot0 = 0;
    for (const auto& t : plan.split_tiles) {
      EXPECT_EQ(t.slot0, slot0);
      EXPECT_EQ(static_cast<int>(ranges[static_cast<size_t>(t.tile)].size()), t.runs);
      EXPECT_GT(t.runs, 1);
      slot0 += t.runs;
    }
    EXPECT_EQ(slot0, plan.slots);
  }
}

// The launch of a sinks + window mask cuts the sink tile's walk by the plan's rule (not in the deterministic
// mode), and a forced run length cuts every longer walk.
TEST(Sm80BwdSparse, SplitPlanOfALaunch) {
  using namespace sparse_cases;
  struct Reset {
    ~Reset() { detail::cuda::set_bwd_order_override({}); }
  } reset;
  Sm80Case c = sparse_case(128, 4096, 4096, 2, 2);
  const BlockMask m = sparse::sinks_window({1, 1, 4096, 4096, 128, 128}, 4, 512);
  BwdInputs in = make_bwd_inputs(c, &m);
  BwdResult res = bwd_outputs_like(c, in);
  auto launch_of = [&](bool deterministic) {
    const auto p = detail::make_backward_problem(in.fwd.q, in.fwd.k, in.fwd.v, in.out, in.lse, in.dout,
                                                 {res.dq, res.dk, res.dv, std::nullopt},
                                                 bwd_host_options(c, in, deterministic));
    return detail::cuda::make_bwd_launch(p, detail::cuda::bwd_tuning(128, 128));
  };
  detail::cuda::set_bwd_order_override({.split_run = -1});  // the plan's rule (also the default)
  const auto plain = launch_of(false);
  ASSERT_EQ(plain.split.split_tiles.size(), 1u);
  EXPECT_EQ(plain.split.split_tiles[0].tile, 0);
  EXPECT_GT(plain.split.split_tiles[0].runs, 1);
  EXPECT_EQ(plain.params.kv_units, 32 - 1 + plain.split.split_tiles[0].runs);
  EXPECT_GT(plain.workspace_bytes, launch_of(true).workspace_bytes);
  EXPECT_TRUE(launch_of(true).split.units.empty()) << "the deterministic mode keeps one CTA per tile";
  detail::cuda::set_bwd_order_override({});
  EXPECT_EQ(launch_of(false).split.units.size(), plain.split.units.size())
      << "the plan's rule is the default (kSplitWalksByDefault; OMNIATTN_BWD_SPLIT_RUN unset)";
  detail::cuda::set_bwd_order_override({.split_run = 0});
  EXPECT_TRUE(launch_of(false).split.units.empty());
  detail::cuda::set_bwd_order_override({.split_run = 3});
  const std::vector<int32_t> load = kv_block_load(m.view());
  EXPECT_EQ(launch_of(false).split.split_tiles.size(),
            static_cast<size_t>(std::count_if(load.begin(), load.end(), [](int32_t l) { return l > 3; })));
}

TEST(Sm80BwdSparse, HostElementMaskIsRefused) {
  using namespace sparse_cases;
  Sm80Case c = sparse_case(64, 64, 64, 1, 1);
  BlockMask m = random_blocks({1, 1, 64, 64, 64, 64}, window(-1, -1));
  BwdInputs in = make_bwd_inputs(c, &m);
  BwdResult res = bwd_outputs_like(c, in);
  AttentionOptions o = bwd_host_options(c, in, false);
  o.block_mask->host_element_mask = [](int64_t, int64_t, int64_t i, int64_t j) { return j <= i; };
  const auto p = detail::make_backward_problem(in.fwd.q, in.fwd.k, in.fwd.v, in.out, in.lse, in.dout,
                                               {res.dq, res.dk, res.dv, std::nullopt}, o);
  const std::string why = detail::cuda::bwd_layout_refusal(p, detail::cuda::bwd_tuning(64, 64));
  EXPECT_NE(why.find("host_element_mask"), std::string::npos) << why;
  o.block_mask->host_element_mask = nullptr;
  const auto q = detail::make_backward_problem(in.fwd.q, in.fwd.k, in.fwd.v, in.out, in.lse, in.dout,
                                               {res.dq, res.dk, res.dv, std::nullopt}, o);
  EXPECT_EQ(detail::cuda::bwd_layout_refusal(q, detail::cuda::bwd_tuning(64, 64)), "");
}

}  // namespace
}  // namespace omniattn::testing
