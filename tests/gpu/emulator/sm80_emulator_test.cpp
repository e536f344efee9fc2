// The real sm_80 forward kernel code, run on the CPU under the host emulation, against the float64 reference:
// fragment layouts, masks, tile ranges, pipeline waits and the epilogue are checked without a GPU.
// Shapes are small: every CUDA thread is a fiber. Build and run with tests/gpu/emulator/run.sh.
// Block-sparse forward (Sm80EmulatedSparse.*): the walk against brute force, then the kernel on every generator
// kind, both tile geometries (128 x 64 at D <= 128, 64 x 64 at D >= 192), GQA packing, varlen, options masks on
// top, unlisted blocks never loaded, empty query blocks.
#include <cstring>
#include <numeric>
#include <random>

#include "cuda/flash/fwd_arguments.hpp"
#include "cuda/flash/fwd_sparse_walk.hpp"
#include "gpu/emulator/emulated_kernels.hpp"
#include "gpu/sm80_case.hpp"
#include "omniattn/sparse.hpp"

namespace omniattn::testing {
namespace {

using detail::cuda::GqaPacking;

// A host copy of `t` laid out head-major with padded rows ([B, H, S, D + 8] seen as [B, S, H, D]), as the GPU
// tests' strided case.
struct StridedCopy {
  std::vector<uint8_t> storage;
  TensorView view;
  explicit StridedCopy(const HostTensor& t) {
    view = t.view();
    const int64_t row = view.shape[view.ndim - 1] + 8;
    if (view.ndim == 3)
      view.stride = {row, view.shape[0] * row, 1, 0};
    else
      view.stride = {view.shape[2] * view.shape[1] * row, row, view.shape[1] * row, 1};
    int64_t elements = 1;
    for (int d = 0; d < view.ndim; ++d) elements += (view.shape[d] - 1) * view.stride[d];
    const int64_t es = dtype_size(view.dtype);
    storage.assign(static_cast<size_t>(elements * es) + 16, 0xFF);
    // 16-byte aligned start, as cudaMalloc gives.
    uint8_t* base = storage.data() + (16 - reinterpret_cast<uintptr_t>(storage.data()) % 16) % 16;
    view.data = base;
    for_each_element(view, [&](int64_t linear, int64_t offset) {
      std::memcpy(base + offset * es, static_cast<const uint8_t*>(t.view().data) + linear * es, es);
    });
  }
  void copy_back(HostTensor& t) const {
    const int64_t es = dtype_size(view.dtype);
    for_each_element(view, [&](int64_t linear, int64_t offset) {
      std::memcpy(static_cast<uint8_t*>(t.view().data) + linear * es,
                  static_cast<const uint8_t*>(view.data) + offset * es, es);
    });
  }
};

Sm80Result emulate(const Sm80Case& c) {
  const Sm80Inputs in = make_inputs(c);
  Sm80Result res;
  res.out = out_like(c, in);
  res.lse = lse_like(c, in);
  std::optional<TensorView> lse_view;
  if (c.with_lse) lse_view = res.lse.view();
  std::optional<StridedCopy> q, k, v, out;
  if (c.strided) q.emplace(in.q), k.emplace(in.k), v.emplace(in.v), out.emplace(res.out);
  const auto p = c.strided
                     ? detail::make_forward_problem(q->view, k->view, v->view, {out->view, lse_view}, in.host_options)
                     : detail::make_forward_problem(in.q, in.k, in.v, {res.out.view(), lse_view}, in.host_options);
  const auto tuning = detail::cuda::fwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv));
  EXPECT_GT(tuning.d, 0) << c.describe();
  const std::string refused = detail::cuda::fwd_layout_refusal(p, tuning, c.packing);
  EXPECT_TRUE(refused.empty()) << refused << " in " << c.describe();
  if (!refused.empty()) return res;
  auto launch = detail::cuda::make_fwd_launch(p, tuning, c.packing);
  if (!launch.seqs.empty()) launch.params.seqs = launch.seqs.data();
  if (!launch.empty())
    EXPECT_TRUE(detail::cuda::emulate_fwd_sm80(p.dtype, static_cast<int>(p.d), static_cast<int>(p.dv), launch.params));
  if (c.strided) out->copy_back(res.out);
  check_against_reference(c, in, res);
  return res;
}

TEST(Sm80Emulated, Basic) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.sq = c.sk = 64;
  emulate(c);
}

TEST(Sm80Emulated, HeadDims) {
  const int64_t dims[][2] = {{64, 64}, {96, 96}, {128, 128}, {192, 192}, {192, 128}, {256, 256}};
  for (const auto& hd : dims) {
    Sm80Case c;
    c.batch = 1;
    c.hq = c.hkv = 1;
    c.d = hd[0];
    c.dv = hd[1];
    c.sq = 130;
    c.sk = 150;
    c.causal = hd[0] == 128;
    emulate(c);
  }
  Sm80Case c;
  c.dtype = DType::f16;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.sq = c.sk = 100;
  emulate(c);
}

TEST(Sm80Emulated, OddLengthsAndCausal) {
  for (int64_t n : {1, 17, 113})
    for (bool causal : {false, true}) {
      Sm80Case c;
      c.batch = 1;
      c.hq = c.hkv = 1;
      c.sq = n;
      c.sk = n + 50;
      c.causal = causal;
      emulate(c);
      std::swap(c.sq, c.sk);
      emulate(c);
    }
}

TEST(Sm80Emulated, WindowsSinksVarlen) {
  Sm80Case c;
  c.hq = c.hkv = 1;
  c.q_lens = {0, 17, 150, 3};
  c.k_lens = {9, 0, 140, 70};
  c.causal = true;
  c.window_left = 30;
  c.sinks = 3;
  emulate(c);
  c.window_right = 10;
  c.causal = false;
  emulate(c);
}

TEST(Sm80Emulated, GqaScoreModsSeqused) {
  Sm80Case c;
  c.batch = 2;
  c.hq = 3;
  c.hkv = 1;
  c.sq = 20;
  c.sk = 90;
  c.causal = true;
  c.softcap = 1.5;
  c.alibi = Sm80Case::Alibi::per_batch;
  c.sink_logits = true;
  c.seqused_k = {60, 0};
  for (GqaPacking packing : {GqaPacking::never, GqaPacking::always}) {
    c.packing = packing;
    emulate(c);
  }
}

TEST(Sm80Emulated, SevenQueryHeadsOnOneKvHead) {
  Sm80Case c;
  c.batch = 1;
  c.hq = 7;
  c.hkv = 1;
  c.sk = 150;
  c.causal = true;
  for (int64_t sq : {1, 100}) {  // 1: a decode step, packed automatically
    c.sq = sq;
    for (GqaPacking packing : {GqaPacking::automatic, GqaPacking::never, GqaPacking::always}) {
      c.packing = packing;
      emulate(c);
    }
  }
}

TEST(Sm80Emulated, MaskedTilesAreNeverLoaded) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.sq = 16;
  c.sk = 700;
  c.causal = true;
  c.window_left = 100;
  c.sinks = 4;
  c.poison_keys_begin = 128;
  c.poison_keys_end = 584 - 128;
  emulate(c);
}

TEST(Sm80Emulated, StridedTensors) {
  Sm80Case c;
  c.strided = true;
  c.d = 96;
  c.hq = 4;
  c.hkv = 2;
  c.batch = 1;
  c.sq = c.sk = 70;
  c.causal = true;
  emulate(c);
  c.d = 192;
  c.dv = 128;
  c.q_lens = {40, 0, 70};
  c.k_lens = {20, 30, 100};
  emulate(c);
}

TEST(Sm80Emulated, SinksAcrossTilesEmptyRowsNegativeScale) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.causal = true;
  c.window_left = 20;
  c.sinks = 70;  // spans two KV tiles
  c.sq = 160;
  c.sk = 140;  // Sq > Sk: empty rows
  c.sink_logits = true;
  emulate(c);
  c.sinks = 0;
  c.window_left = -1;
  c.sink_logits = false;
  c.scale = -0.2;  // general-logits path
  emulate(c);
  c.scale.reset();
  c.with_lse = false;
  c.window_left = 3;
  c.window_right = 3;
  c.causal = false;
  emulate(c);
}

// ---------------------------------------------------------------------------------------------------------
// Block-sparse forward.

using BlockKind = BlockMask::Block;

// A random dense block map (skipped / partial / full with the given weights), with query block `empty_row` of
// every (batch, head) listing nothing.
BlockMask random_blocks(const BlockMask::Geometry& g, int w_skip, int w_partial, int w_full, int64_t empty_row = -1,
                        const ElementMask& element = {}) {
  std::vector<BlockKind> map(static_cast<size_t>(g.batch * g.heads * g.q_blocks() * g.k_blocks()));
  std::discrete_distribution<int> kind({double(w_skip), double(w_partial), double(w_full)});
  for (size_t i = 0; i < map.size(); ++i) {
    const int64_t qb = static_cast<int64_t>(i) / g.k_blocks() % g.q_blocks();
    map[i] = qb == empty_row ? BlockKind::skipped : static_cast<BlockKind>(kind(rng()));
  }
  return BlockMask::from_block_map(g, map, element);
}

// The walk visits exactly the listed kernel tiles inside the options mask's two tile intervals, in order:
// partial (sink interval, window interval), then full (same), each ascending.
TEST(Sm80EmulatedSparse, WalkMatchesBruteForce) {
  using detail::cuda::BlockRun;
  std::uniform_int_distribution<int> coin(0, 2);
  for (int trial = 0; trial < 4000; ++trial) {
    const int32_t k_blocks = 1 + static_cast<int32_t>(rng()() % 40), split_log2 = static_cast<int32_t>(rng()() % 2);
    std::vector<int32_t> partial, full;
    for (int32_t kb = 0; kb < k_blocks; ++kb) {
      const int c = coin(rng());
      if (c == 1) partial.push_back(kb);
      if (c == 2) full.push_back(kb);
    }
    const int32_t tiles = k_blocks << split_log2;
    auto pick = [&](int32_t lo, int32_t hi) { return lo + static_cast<int32_t>(rng()() % (hi - lo + 1)); };
    const int32_t sink_tiles = trial % 3 == 0 ? 0 : pick(0, tiles);
    const int32_t window_first = pick(sink_tiles, tiles);
    const int32_t window_end = trial % 7 == 0 ? window_first : pick(window_first, tiles);
    BlockRun run;
    run.partial_blocks = partial.data();
    run.full_blocks = full.data();
    run.partial = static_cast<int32_t>(partial.size());
    run.count = static_cast<int32_t>(partial.size() + full.size());
    const auto walk =
        detail::cuda::make_sparse_walk(run, k_blocks, split_log2, sink_tiles, window_first, window_end);

    std::vector<std::pair<int, bool>> expected, got;
    for (const auto* list : {&partial, &full})
      for (auto [from, to] : {std::pair{0, sink_tiles}, {window_first, window_end}})
        for (int32_t kb : *list)
          for (int32_t sub = 0; sub < (1 << split_log2); ++sub) {
            const int32_t u = (kb << split_log2) + sub;
            if (u >= from && u < to) expected.emplace_back(u, list == &partial);
          }
    for (int it = 0; it < walk.count; ++it) got.emplace_back(walk.block(it), walk.partial(it));
    ASSERT_EQ(got, expected) << "trial " << trial << ": k_blocks " << k_blocks << " split_log2 " << split_log2
                             << " sinks " << sink_tiles << " window [" << window_first << ", " << window_end << ")";
  }
}

TEST(Sm80EmulatedSparse, SlidingWindowWithCausalOnTop) {
  const BlockMask m = sparse::sliding_window({1, 1, 300, 300, 128, 128}, 150, 0);
  Sm80Case c;
  c.batch = 1, c.hq = c.hkv = 1, c.sq = c.sk = 300, c.mask = &m;
  emulate(c);
  c.causal = true;  // the same causal rule again through AttentionOptions: full blocks on the diagonal are masked
  emulate(c);
}

TEST(Sm80EmulatedSparse, RandomPerHeadBlocksOddLengthsOptionsMasks) {
  // Per-query-head masks on GQA 2:1 (packing impossible), 128 x 64 blocks split into 64-key tiles, partial
  // blocks causal through the element rule, an empty query block, and options' window + sinks on top.
  ElementMask element;
  element.window_right = 0;
  const BlockMask m = random_blocks({1, 2, 200, 333, 128, 64}, 1, 1, 1, /*empty_row=*/1, element);
  Sm80Case c;
  c.batch = 1, c.hq = 2, c.hkv = 1, c.sq = 200, c.sk = 333, c.mask = &m;
  c.packing = GqaPacking::always;
  emulate(c);
  c.packing = GqaPacking::automatic;
  c.causal = true, c.window_left = 90, c.sinks = 5;
  emulate(c);
}

TEST(Sm80EmulatedSparse, Blocks64x64AtD192PerKvHead) {
  // block_m = 64 at D >= 192: 64-token query blocks fit; StreamingLLM masks per KV head on GQA 3:1.
  const BlockMask m = sparse::head_windows({1, 2, 150, 190, 64, 64}, {{{40, 0, 4}}, {{-1, 10, 0}}});
  Sm80Case c;
  c.batch = 1, c.hq = 6, c.hkv = 2, c.sq = 150, c.sk = 190, c.d = 192, c.dv = 128, c.mask = &m;
  emulate(c);
}

TEST(Sm80EmulatedSparse, Blocks64PackedGqa) {
  // block_q = 64 against the 128-row tile of D = 64: fits only with the two query heads of a KV head packed
  // (128 packed rows = 64 tokens), which a mask shared per KV head allows; per-query-head masks are refused.
  const BlockMask m = random_blocks({1, 2, 130, 140, 64, 128}, 1, 1, 1, 0, [] {
    ElementMask e;
    e.window_left = 30, e.window_right = 30;
    return e;
  }());
  Sm80Case c;
  c.batch = 1, c.hq = 4, c.hkv = 2, c.sq = 130, c.sk = 140, c.mask = &m;
  emulate(c);
  const Sm80Inputs in = make_inputs(c);
  HostTensor out = out_like(c, in);
  const auto p = detail::make_forward_problem(in.q, in.k, in.v, {out.view(), std::nullopt}, in.host_options);
  const auto tuning = detail::cuda::fwd_tuning(64, 64);
  EXPECT_EQ(detail::cuda::make_fwd_launch(p, tuning, GqaPacking::automatic).params.pack, 2);
  EXPECT_NE(detail::cuda::fwd_layout_refusal(p, tuning, GqaPacking::never).find("block_q"), std::string::npos);
  const BlockMask per_head = random_blocks({1, 4, 130, 140, 64, 128}, 1, 1, 1);
  c.mask = &per_head;
  const Sm80Inputs in2 = make_inputs(c);
  const auto p2 = detail::make_forward_problem(in2.q, in2.k, in2.v, {out.view(), std::nullopt}, in2.host_options);
  EXPECT_NE(detail::cuda::fwd_layout_refusal(p2, tuning).find("multiple of this kernel's query tile of 128 rows"),
            std::string::npos);
}

TEST(Sm80EmulatedSparse, VarlenPerSequenceMasks) {
  // One mask per sequence (batch = B), sequence-local positions, Sq != Sk, an empty sequence.
  ElementMask element;
  element.window_right = 0;
  const BlockMask m = random_blocks({3, 1, 150, 170, 128, 128}, 1, 2, 1, -1, element);
  Sm80Case c;
  c.hq = c.hkv = 2;
  c.q_lens = {50, 0, 150};
  c.k_lens = {60, 10, 170};
  c.mask = &m;
  emulate(c);
}

TEST(Sm80EmulatedSparse, Neighborhood2dTileOrderAndDocuments) {
  GridMask grid;
  grid.kind = GridMask::Kind::neighborhood;
  grid.ndim = 2;
  grid.shape[0] = 16, grid.shape[1] = 16;
  grid.kernel[0] = 5, grid.kernel[1] = 7;
  grid.dilation[0] = 2;
  const BlockMask m = sparse::neighborhood({1, 1, 256, 256, 128, 128}, grid, sparse::tile_order(grid, {8, 16, 1}));
  Sm80Case c;
  c.batch = 1, c.hq = c.hkv = 1, c.sq = c.sk = 256, c.mask = &m;
  emulate(c);
  const BlockMask docs = sparse::documents({1, 1, 199, 199, 64, 64}, {17, 64, 1, 117}, true);
  c.sq = c.sk = 199, c.d = 256, c.dv = 256, c.mask = &docs;  // 64 x 64 tiles
  emulate(c);
}

TEST(Sm80EmulatedSparse, Neighborhood3dStridedCausalPackedAndAxial) {
  // The grid table's paths through the whole kernel: a 3-D window with strides, a dilated axis and a causal one,
  // 64-token blocks on GQA 2:1 with the two query heads packed into one tile (rows / 2 = tokens); then axial rows
  // (one axis causal) in a random order on 128-token blocks.
  GridMask video;
  video.kind = GridMask::Kind::neighborhood;
  video.ndim = 3;
  video.shape[0] = 4, video.shape[1] = 6, video.shape[2] = 10;
  video.kernel[0] = 3, video.kernel[1] = 3, video.kernel[2] = 4;
  video.stride[1] = 2, video.stride[2] = 3;
  video.dilation[2] = 2;
  video.causal[0] = true;
  const BlockMask m = sparse::neighborhood({1, 1, 240, 240, 64, 64}, video, sparse::tile_order(video, {2, 4, 4}));
  ASSERT_FALSE(m.view().element.grid_table.empty());
  Sm80Case c;
  c.batch = 1, c.hq = 2, c.hkv = 1, c.sq = c.sk = 240, c.d = 128, c.mask = &m;
  emulate(c);

  GridMask rows;
  rows.kind = GridMask::Kind::axial;
  rows.ndim = 2;
  rows.shape[0] = 12, rows.shape[1] = 20;
  rows.causal[1] = true;
  std::vector<int32_t> order(240);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  const BlockMask axial = sparse::axial({1, 1, 240, 240, 128, 128}, rows, order);
  ASSERT_FALSE(axial.view().element.grid_table.empty());
  c.hq = c.hkv = 1, c.mask = &axial;
  emulate(c);
}

TEST(Sm80EmulatedSparse, UnlistedBlocksAreNeverLoaded) {
  // KV blocks 1 and 2 (keys 64..191) are listed by no query block and hold NaN: loading them would poison O.
  const BlockMask::Geometry g{1, 1, 256, 300, 128, 64};
  std::vector<BlockKind> map(static_cast<size_t>(g.q_blocks() * g.k_blocks()), BlockKind::full);
  for (int64_t qb = 0; qb < g.q_blocks(); ++qb)
    for (int64_t kb : {1, 2}) map[static_cast<size_t>(qb * g.k_blocks() + kb)] = BlockKind::skipped;
  map[3] = BlockKind::partial;  // (query block 0, KV block 3)
  ElementMask element;
  element.window_left = 200;
  const BlockMask m = BlockMask::from_block_map(g, map, element);
  Sm80Case c;
  c.batch = 1, c.hq = c.hkv = 1, c.sq = 256, c.sk = 300, c.mask = &m;
  c.poison_keys_begin = 64, c.poison_keys_end = 192;
  emulate(c);
}

TEST(Sm80EmulatedSparse, EmptyRowsSinkLogitsScoreMods) {
  // Query block 0 lists nothing: its rows give O = 0 and LSE = the sink logit (-inf without one).
  const BlockMask m = random_blocks({2, 1, 200, 180, 128, 128}, 1, 1, 1, /*empty_row=*/0);
  Sm80Case c;
  c.batch = 2, c.hq = 3, c.hkv = 1, c.sq = 200, c.sk = 180, c.mask = &m;
  emulate(c);
  c.sink_logits = true, c.softcap = 2.0, c.alibi = Sm80Case::Alibi::per_head;
  emulate(c);
}

}  // namespace
}  // namespace omniattn::testing
