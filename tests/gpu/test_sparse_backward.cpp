// cuda_sm80 backward with a block-sparse mask (options.block_mask, uploaded with DeviceBlockMask) against the
// float64 reference backward run with the equivalent dense element mask (sm80_bwd_case.hpp), FlashAttention's
// tolerance rule. O and LSE come from the float64 reference forward on the same mask. Covered: random block
// maps with partial and full blocks at every pair of mask block sizes, every generator, odd lengths (1, 113,
// 799) and Sq != Sk, AttentionOptions masks on top, GQA 7/1 and 32/8 with shared / per-KV-head / per-head
// masks, varlen with per-sequence masks, head dims 64/128/256 (and 96, 192), bf16 and fp16, KV blocks no query
// lists (never loaded: their keys are NaN; dK = dV = 0), query blocks that list nothing (dQ = 0), the
// deterministic mode (bitwise repeatable) and the refusals. SparseBackwardSanitize.* is the compute-sanitizer
// subset.
#include <algorithm>
#include <random>

#include "cuda/bwd/bwd_arguments.hpp"
#include "gpu/sm80_bwd_case.hpp"
#include "omniattn/device_mask.hpp"
#include "omniattn/sparse.hpp"

namespace omniattn::testing {
namespace {

using Block = BlockMask::Block;
using Geometry = BlockMask::Geometry;

constexpr int64_t kBlockSizes[][2] = {{64, 64}, {128, 128}, {64, 128}, {128, 64}};

// Each block skipped / partial / full at random, except the KV blocks in `unlisted` (no query block lists
// them) and the query blocks in `empty_rows` (they list nothing).
BlockMask random_blocks(const Geometry& g, const ElementMask& element, const std::vector<int64_t>& unlisted = {},
                        const std::vector<int64_t>& empty_rows = {}, int skip_weight = 1) {
  std::vector<Block> map(static_cast<size_t>(g.batch * g.heads * g.q_blocks() * g.k_blocks()));
  std::discrete_distribution<int> kind({double(skip_weight), 1.0, 1.0});
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

Sm80Case make_case(int64_t d, int64_t sq, int64_t sk, int64_t hq = 2, int64_t hkv = 1, int64_t batch = 1) {
  Sm80Case c;
  c.batch = batch;
  c.d = d;
  c.sq = sq;
  c.sk = sk;
  c.hq = hq;
  c.hkv = hkv;
  return c;
}

TEST(SparseBackward, RandomBlocksEveryHeadDimAndDtype) {
  OMNI_REQUIRE_GPU();
  for (DType dtype : {DType::bf16, DType::f16})
    for (int64_t d : {64, 128, 256})
      for (const auto& bs : kBlockSizes) {
        Sm80Case c = make_case(d, 239, 300);
        c.dtype = dtype;
        c.batch = 2;
        const BlockMask m = random_blocks({2, 1, c.sq, c.sk, bs[0], bs[1]}, window(60, 20));
        check_sm80_backward(c, false, &m);
      }
  for (const auto& hd : {std::pair<int64_t, int64_t>{96, 96}, {192, 128}, {192, 192}}) {
    Sm80Case c = make_case(hd.first, 239, 239);
    c.dv = hd.second;
    const BlockMask m = random_blocks({1, 1, c.sq, c.sk, 64, 64}, window(-1, 0));
    check_sm80_backward(c, false, &m);
  }
}

TEST(SparseBackward, OddLengthsCausalOnTop) {
  OMNI_REQUIRE_GPU();
  const int64_t shapes[][2] = {{1, 1}, {1, 799}, {113, 113}, {799, 799}, {113, 799}, {799, 113}};
  for (const auto& s : shapes)
    for (bool causal : {false, true})
      for (int64_t d : {64, 128}) {
        Sm80Case c = make_case(d, s[0], s[1]);
        c.causal = causal;
        const int64_t bq = causal ? 64 : 128, bk = d == 64 ? 64 : 128;
        const BlockMask m = random_blocks({1, 1, c.sq, c.sk, bq, bk}, window(100, 100, 2));
        check_sm80_backward(c, false, &m);
      }
}

TEST(SparseBackward, Generators) {
  OMNI_REQUIRE_GPU();
  const int64_t n = 799;
  std::vector<BlockMask> masks;
  for (const auto& bs : kBlockSizes) {
    const Geometry g{1, 1, n, n, bs[0], bs[1]};
    masks.push_back(sparse::sliding_window(g, 200, 0));
    masks.push_back(sparse::sliding_window(g, 100, 100));
    masks.push_back(sparse::sinks_window(g, 4, 150));
    masks.push_back(sparse::prefix_lm(g, 130));
    masks.push_back(sparse::documents(g, {100, 1, 317, 64, 317}, true));
    masks.push_back(sparse::documents(g, {400, 399}, false));
  }
  masks.push_back(sparse::power_of_two_blocks({1, 1, n, n, 64, 64}, 1));
  masks.push_back(sparse::dilated_blocks({1, 1, n, n, 128, 128}, 3, 2, true));
  for (const BlockMask& m : masks)
    for (int64_t d : {64, 128}) {
      Sm80Case c = make_case(d, n, n);
      check_sm80_backward(c, false, &m);
    }
  // NATTEN 2-D neighborhood on a 32 x 24 grid in 8 x 8 tiles (64-token blocks), and axial attention.
  GridMask grid;
  grid.kind = GridMask::Kind::neighborhood;
  grid.ndim = 2;
  grid.shape[0] = 32, grid.shape[1] = 24;
  grid.kernel[0] = 7, grid.kernel[1] = 5;
  grid.dilation[1] = 2;
  const int64_t tokens = 32 * 24;
  const BlockMask na = sparse::neighborhood({1, 1, tokens, tokens, 64, 64}, grid, sparse::tile_order(grid, {8, 8, 1}));
  GridMask axial = grid;
  axial.kind = GridMask::Kind::axial;
  axial.causal[0] = true;
  const BlockMask ax = sparse::axial({1, 1, tokens, tokens, 128, 128}, axial);
  for (const BlockMask* m : {&na, &ax}) {
    Sm80Case c = make_case(128, tokens, tokens, 4, 4);
    check_sm80_backward(c, false, m);
  }
}

TEST(SparseBackward, GroupedQueryHeadsSharedAndPerHeadMasks) {
  OMNI_REQUIRE_GPU();
  for (const auto& heads : {std::pair<int64_t, int64_t>{7, 1}, {32, 8}})
    for (const int64_t mask_heads : {int64_t{1}, heads.second, heads.first})
      for (int64_t d : {64, 128}) {
        Sm80Case c = make_case(d, 300, 400, heads.first, heads.second);
        c.causal = mask_heads == heads.first;
        const BlockMask m = random_blocks({1, mask_heads, c.sq, c.sk, 64, d == 64 ? 64 : 128}, window(80, 10));
        check_sm80_backward(c, false, &m);
      }
  // Per-KV-head windows (MoA) through the generator.
  Sm80Case c = make_case(128, 500, 500, 32, 8);
  std::vector<std::array<int64_t, 3>> windows;
  for (int h = 0; h < 8; ++h) windows.push_back({64 * (h + 1), h % 2 ? 0 : 16, h % 3});
  const BlockMask m = sparse::head_windows({1, 8, 500, 500, 128, 64}, windows);
  check_sm80_backward(c, false, &m);
}

TEST(SparseBackward, VarlenPerSequenceMasks) {
  OMNI_REQUIRE_GPU();
  for (int64_t mask_batch : {1, 4}) {
    Sm80Case c;
    c.d = 128;
    c.hq = 4;
    c.hkv = 2;
    c.q_lens = {113, 0, 799, 1};
    c.k_lens = {200, 17, 799, 64};
    c.causal = mask_batch == 1;
    const BlockMask m = random_blocks({mask_batch, 2, 799, 799, 128, 64}, window(-1, 0));
    check_sm80_backward(c, false, &m);
  }
  Sm80Case c = make_case(64, 300, 400, 2, 2, 3);  // seqused_k: keys past it are NaN, their dK/dV 0
  c.seqused_k = {150, 0, 400};
  const BlockMask m = random_blocks({3, 1, 300, 400, 64, 64}, window(50, 50));
  check_sm80_backward(c, false, &m);
}

TEST(SparseBackward, UnlistedTilesAndEmptyRows) {
  OMNI_REQUIRE_GPU();
  for (int64_t d : {64, 128, 256}) {
    Sm80Case c = make_case(d, 500, 600, 4, 2);
    // KV blocks 2 and 3 of 64 keys: listed by nobody, their keys NaN (a load would poison the gradients);
    // query block 1 lists nothing (its rows see no key: dQ = 0, LSE -inf).
    c.poison_keys_begin = 128;
    c.poison_keys_end = 256;
    const BlockMask m = random_blocks({1, 2, c.sq, c.sk, 64, 64}, window(-1, -1), {2, 3}, {1});
    const BwdResult r = check_sm80_backward(c, false, &m);
    for (int64_t i = 64 * c.hq * d; i < 128 * c.hq * d; ++i) ASSERT_EQ(r.dq.get(i), 0.0) << "dq element " << i;
    for (int64_t i = 128 * c.hkv * d; i < 256 * c.hkv * d; ++i) {
      ASSERT_EQ(r.dk.get(i), 0.0) << "dk element " << i;
      ASSERT_EQ(r.dv.get(i), 0.0) << "dv element " << i;
    }
  }
}

// Deterministic mode: three runs on the same inputs give the same bits (and pass the tolerance), with orders
// ascending (no right bound) and descending (causal options or a right-bounded element rule).
TEST(SparseBackward, DeterministicIsBitwiseRepeatable) {
  OMNI_REQUIRE_GPU();
  struct Variant {
    int64_t d, bq, bk, mask_heads;
    bool causal;
    ElementMask element;
  };
  const Variant variants[] = {
      {128, 128, 128, 1, false, window(200, 30)}, {128, 64, 64, 4, true, window(-1, -1)},
      {64, 64, 128, 2, false, window(300, 0)},    {256, 128, 64, 4, false, window(-1, -1)},
  };
  for (const Variant& v : variants) {
    Sm80Case c = make_case(v.d, 799, 799, 4, 2, 2);
    c.causal = v.causal;
    const BlockMask m = random_blocks({1, v.mask_heads, c.sq, c.sk, v.bq, v.bk}, v.element);
    const BwdInputs in = make_bwd_inputs(c, &m);
    const BwdResult first = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/true);
    for (int run = 0; run < 2; ++run) {
      const BwdResult again = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/false);
      EXPECT_TRUE(same_gradients(first, again, false)) << "deterministic run differs: " << c.describe();
    }
  }
  Sm80Case c = make_case(128, 799, 799, 32, 8);  // GQA 32/8, sliding window generator
  const BlockMask m = sparse::sliding_window({1, 1, 799, 799, 64, 64}, 256, 0);
  const BwdInputs in = make_bwd_inputs(c, &m);
  const BwdResult first = run_sm80_backward(c, in, true, true);
  EXPECT_TRUE(same_gradients(first, run_sm80_backward(c, in, true, false), false)) << c.describe();
}

// Split walks (bwd_split_plan.hpp), sm_80 and (on Hopper) sm_90a kernels: forced runs of 1 and 3 mask blocks cut
// every longer walk (random blocks at each block-size pair, per-head lists with GQA, varlen with seqused-style
// empty sequences, half-filled tiles), and the plan's rule cuts a sinks + window mask's sink tile. Outputs are
// poisoned before each run (check_sm80_backward): a row no run or split-store wrote would show.
TEST(SparseBackward, SplitWalks) {
  OMNI_REQUIRE_GPU();
  struct Restore {
    ~Restore() { detail::cuda::set_bwd_order_override({}); }
  } restore;
  std::vector<Backend> backends{Backend::cuda_sm80};
  if (have_hopper() && OMNIATTN_WITH_SM90) backends.push_back(Backend::cuda_sm90);
  for (Backend backend : backends) {
    for (int run : {1, 3}) {
      detail::cuda::set_bwd_order_override({.split_run = run});
      for (const auto& bs : kBlockSizes)
        for (int64_t d : {64, 128}) {
          Sm80Case c = make_case(d, 700, 650, 2, 1, 2);
          c.backend = backend;
          const BlockMask m = random_blocks({2, 1, c.sq, c.sk, bs[0], bs[1]}, window(200, 20, 3));
          check_sm80_backward(c, false, &m);
        }
      Sm80Case g = make_case(128, 500, 600, 8, 2);
      g.backend = backend;
      g.causal = true;
      const BlockMask own = random_blocks({1, 8, g.sq, g.sk, 64, 128}, window(-1, -1));
      check_sm80_backward(g, false, &own);
      Sm80Case v;
      v.backend = backend;
      v.d = 128;
      v.hq = 4;
      v.hkv = 2;
      v.q_lens = {113, 0, 799, 1};
      v.k_lens = {200, 17, 799, 64};
      const BlockMask sinks = sparse::sinks_window({1, 1, 799, 799, 128, 128}, 4, 150);
      check_sm80_backward(v, false, &sinks);
    }
    detail::cuda::set_bwd_order_override({.split_run = -1});
    Sm80Case c = make_case(128, 2600, 2600, 1, 1);  // the plan's rule: the sink tile's 21-block walk in 3 runs
    c.backend = backend;
    const BlockMask m = sparse::sinks_window({1, 1, 2600, 2600, 128, 128}, 4, 300);
    check_sm80_backward(c, false, &m);
  }
}

TEST(SparseBackward, HostElementMaskIsRefused) {
  OMNI_REQUIRE_GPU();
  Sm80Case c = make_case(64, 128, 128);
  const BlockMask m = random_blocks({1, 1, 128, 128, 64, 64}, window(-1, -1));
  const BwdInputs in = make_bwd_inputs(c, &m);
  DeviceTensor q = DeviceTensor::upload(in.fwd.q), k = DeviceTensor::upload(in.fwd.k), v = DeviceTensor::upload(in.fwd.v);
  DeviceTensor out = DeviceTensor::upload(in.out), lse = DeviceTensor::upload(in.lse), dout = DeviceTensor::upload(in.dout);
  DeviceTensor dq = DeviceTensor::allocate(c.dtype, in.fwd.q.view()), dk = DeviceTensor::allocate(c.dtype, in.fwd.k.view()),
               dv = DeviceTensor::allocate(c.dtype, in.fwd.v.view());
  const DeviceBlockMask device_mask = DeviceBlockMask::upload(m, 0);
  AttentionOptions o;
  o.backend = Backend::cuda_sm80;
  o.block_mask = device_mask.view();
  o.block_mask->host_element_mask = [](int64_t, int64_t, int64_t i, int64_t j) { return j <= i; };
  try {
    attention_backward(q, k, v, out, lse, dout, {dq.view(), dk.view(), dv.view(), std::nullopt}, o);
    ADD_FAILURE() << "cuda_sm80 ran a block mask with a host_element_mask";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("host_element_mask"), std::string::npos) << e.what();
  }
  // Without the functor the same call runs.
  o.block_mask->host_element_mask = nullptr;
  EXPECT_NO_THROW(attention_backward(q, k, v, out, lse, dout, {dq.view(), dk.view(), dv.view(), std::nullopt}, o));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// compute-sanitizer subset (memcheck, racecheck): half-filled tiles, per-head lists, deterministic turns.
TEST(SparseBackwardSanitize, SmallMasks) {
  OMNI_REQUIRE_GPU();
  Sm80Case c = make_case(64, 200, 260, 4, 2);
  const BlockMask m = random_blocks({1, 4, c.sq, c.sk, 64, 64}, window(40, 10));
  check_sm80_backward(c, false, &m);
  check_sm80_backward(c, /*deterministic=*/true, &m);
  Sm80Case big = make_case(128, 150, 150, 2, 1);
  big.causal = true;
  const BlockMask w = sparse::sliding_window({1, 1, 150, 150, 128, 128}, 60, 0);
  check_sm80_backward(big, true, &w);
}

}  // namespace
}  // namespace omniattn::testing
