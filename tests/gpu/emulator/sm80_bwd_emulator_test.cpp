// The real sm_80 backward kernel code (preprocess, main, postprocess, d sink), run on the CPU under the host
// emulation, against the float64 reference backward: fragment layouts of the five GEMMs, the P^T / dS^T round
// trip through shared memory, masks, query-block ranges, the dQ accumulation and the deterministic mode's
// semaphore order (the emulator aborts when a CTA would wait for one that runs after it). Shapes are small:
// every CUDA thread is a fiber.
#include <cstring>
#include <random>

#include "core/mask_policy.hpp"
#include "cuda/bwd/bwd_arguments.hpp"
#include "cuda/bwd/bwd_tiles.hpp"
#include "gpu/emulator/emulated_bwd_kernels.hpp"
#include "gpu/sm80_bwd_case.hpp"

namespace omniattn::testing {
namespace {

BwdResult emulate_backward(const Sm80Case& c, const BwdInputs& in, bool deterministic = false, bool check = true) {
  BwdResult res = bwd_outputs_like(c, in);
  std::optional<TensorView> dsink;
  if (c.sink_logits) dsink = res.dsink.view();
  const auto p = detail::make_backward_problem(in.fwd.q, in.fwd.k, in.fwd.v, in.out, in.lse, in.dout,
                                               {res.dq, res.dk, res.dv, dsink}, bwd_host_options(c, in, deterministic));
  const auto tuning = detail::cuda::bwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv));
  EXPECT_GT(tuning.d, 0) << c.describe();
  auto launch = detail::cuda::make_bwd_launch(p, tuning);
  if (!launch.seqs.empty()) launch.params.seqs = launch.seqs.data();
  std::vector<uint8_t> workspace(launch.workspace_bytes + 256, 0xFF);  // NaN: every read must be written first
  launch.bind_workspace(workspace.data() + (256 - reinterpret_cast<uintptr_t>(workspace.data()) % 256) % 256);
  if (!launch.empty())
    EXPECT_TRUE(detail::cuda::emulate_bwd_sm80(p.dtype, static_cast<int>(p.d), static_cast<int>(p.dv), launch.params));
  if (check) check_bwd_against_reference(c, in, res);
  return res;
}

BwdResult emulate_backward(const Sm80Case& c, bool deterministic = false) {
  return emulate_backward(c, make_bwd_inputs(c), deterministic);
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
    mask.sinks = pick(0, 1) ? pick(0, 80) : 0;
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

}  // namespace
}  // namespace omniattn::testing
