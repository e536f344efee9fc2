// Block-sparse forward on the CUDA kernels (cuda_sm80, cuda_sm90 and automatic dispatch) against the float64
// reference run with the same block mask (its rule per element; the CPU tests check that rule against dense
// element masks): every generator kind, partial and full blocks, per-KV-head and per-head masks, GQA, odd
// lengths, options masks on top, varlen, fully masked rows, unlisted blocks never loaded, and the refusals.
// Outputs are NaN-poisoned before every run. Skipped without a GPU (sm90 cases without a Hopper GPU).
#include <algorithm>
#include <array>
#include <functional>
#include <string>

#include "core/backend.hpp"
#include "gpu/sm80_case.hpp"
#include "omniattn/device_mask.hpp"
#include "omniattn/sparse.hpp"

namespace omniattn::testing {
namespace {

using BlockKind = BlockMask::Block;

bool have_hopper() {
  if (!have_sm80_gpu() || !OMNIATTN_WITH_SM90) return false;
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  return major == 9;
}

// Whether cuda_sm90 takes a block mask of this geometry (its tiles: 128 rows at D = 128/256, 192 at D = 64;
// 128 keys at D = 64/128, 64 at D = 256). The refusal test checks that the backend agrees.
bool sm90_takes(const Sm80Case& c) {
  if (!c.mask) return c.d == 64 || c.d == 128 || c.d == 256;
  const BlockMask::Geometry& g = c.mask->geometry();
  if (c.d == 64) return false;  // 192-row tiles: no 64/128-token query block holds one
  const int64_t block_n = c.d == 256 ? 64 : 128;
  return (c.d == 128 || c.d == 256) && g.block_q % 128 == 0 && g.block_k % block_n == 0;
}

// Whether cuda_sm80 takes it: 128-row tiles at D <= 128 (64 at D >= 192) inside one query block, possibly with
// the query heads of a KV head packed (mask shared per KV head), and 64-key tiles.
bool sm80_takes(const Sm80Case& c) {
  if (!c.mask) return true;
  const BlockMask::Geometry& g = c.mask->geometry();
  const int64_t block_m = c.d <= 128 ? 128 : 64, group = c.hq / c.hkv;
  const bool pack = group > 1 && g.heads != c.hq && g.block_q * group % block_m == 0 &&
                    c.packing != detail::cuda::GqaPacking::never;
  return g.block_q % block_m == 0 || pack;
}

// The backends to run a case on: each CUDA backend that takes it, and automatic dispatch.
std::vector<Backend> backends_for(const Sm80Case& c) {
  std::vector<Backend> b;
  if (!have_sm80_gpu()) return b;
  if (sm80_takes(c)) b.push_back(Backend::cuda_sm80);
  if (have_hopper() && sm90_takes(c)) b.push_back(Backend::cuda_sm90);
  b.push_back(Backend::automatic);
  return b;
}

// Checks `c` on every backend that takes it; returns how many runs were checked.
int check_all(Sm80Case c) {
  int runs = 0;
  for (Backend b : backends_for(c)) {
    c.backend = b;
    SCOPED_TRACE(c.describe());
    check_sm80(c);
    ++runs;
  }
  return runs;
}

#define OMNI_REQUIRE_GPU_SPARSE() \
  if (!have_sm80_gpu()) GTEST_SKIP() << "no CUDA device of compute capability >= 8.0"

// A random block map with the given weights of skipped / partial / full blocks; query block `empty_row` of every
// (batch, head) lists nothing.
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

ElementMask causal_elements() {
  ElementMask e;
  e.window_right = 0;
  return e;
}

Sm80Case base_case(int64_t d, int64_t sq, int64_t sk, int64_t hq, int64_t hkv, const BlockMask* mask) {
  Sm80Case c;
  c.batch = 1, c.d = d, c.sq = sq, c.sk = sk, c.hq = hq, c.hkv = hkv, c.mask = mask;
  return c;
}

TEST(SparseForward, SlidingWindowsAndSinksOddLengths) {
  OMNI_REQUIRE_GPU_SPARSE();
  for (int64_t n : {1, 113, 799, 1000})
    for (int64_t d : {128, 256}) {
      const BlockMask causal = sparse::sliding_window({1, 1, n, n, 128, 128}, 300, 0);
      const BlockMask symmetric = sparse::sliding_window({1, 1, n, n, 128, 128}, 200, 200);
      const BlockMask streaming = sparse::sinks_window({1, 1, n, n, 128, 128}, 4, 250);
      for (const BlockMask* m : {&causal, &symmetric, &streaming}) {
        Sm80Case c = base_case(d, n, n, 2, 2, m);
        EXPECT_GE(check_all(c), 2);
        c.causal = true;  // the options' causal mask on top (a no-op for the causal ones, masks `symmetric`)
        check_all(c);
      }
    }
}

TEST(SparseForward, RandomBlocksEveryHeadDimAndDtype) {
  OMNI_REQUIRE_GPU_SPARSE();
  for (DType dtype : {DType::bf16, DType::f16})
    for (int64_t d : {64, 128, 256})
      for (auto [bq, bk] : {std::pair<int64_t, int64_t>{128, 128}, {128, 64}}) {
        const BlockMask m = random_blocks({1, 1, 799, 1000, bq, bk}, 2, 1, 1, 3, causal_elements());
        Sm80Case c = base_case(d, 799, 1000, 2, 2, &m);
        c.dtype = dtype;
        check_all(c);
      }
}

TEST(SparseForward, PerKvHeadAndPerHeadMasksWithGqa) {
  OMNI_REQUIRE_GPU_SPARSE();
  // 7 query heads on 1 KV head (mask shared or per query head) and 32 on 8 (per KV head or per query head);
  // Sq small enough that the dense rule would pack the heads of a KV head (only shared masks allow it).
  for (int64_t sq : {17, 300}) {
    const BlockMask shared = random_blocks({1, 1, sq, 700, 128, 128}, 1, 1, 1, -1, causal_elements());
    const BlockMask per_head7 = random_blocks({1, 7, sq, 700, 128, 128}, 1, 1, 1);
    for (const BlockMask* m : {&shared, &per_head7}) check_all(base_case(128, sq, 700, 7, 1, m));
    const BlockMask per_kv = sparse::head_windows({1, 8, sq, 700, 128, 64}, [] {
      std::vector<std::array<int64_t, 3>> w;
      for (int h = 0; h < 8; ++h) w.push_back({{40 + 60 * h, h % 2 ? 0 : 30, h % 3}});
      return w;
    }());
    const BlockMask per_head32 = random_blocks({1, 32, sq, 700, 128, 128}, 2, 1, 1);
    for (const BlockMask* m : {&per_kv, &per_head32}) {
      Sm80Case c = base_case(128, sq, 700, 32, 8, m);
      c.d = 256;  // 64-key tiles on sm90 too
      check_all(c);
    }
  }
}

TEST(SparseForward, Blocks64) {
  OMNI_REQUIRE_GPU_SPARSE();
  // 64-token query blocks: cuda_sm80 at D >= 192 (64-row tiles), or at D <= 128 with two query heads of a KV
  // head packed into its 128-row tile; cuda_sm90 refuses (automatic dispatch goes to cuda_sm80).
  const BlockMask docs = sparse::documents({1, 1, 799, 799, 64, 64}, {100, 1, 333, 365}, true);
  for (int64_t d : {192, 256}) {
    Sm80Case c = base_case(d, 799, 799, 2, 2, &docs);
    if (d == 192) c.dv = 128;
    EXPECT_GE(check_all(c), 2);
  }
  const BlockMask per_kv = random_blocks({1, 2, 300, 500, 64, 128}, 1, 1, 1, 1, causal_elements());
  for (int64_t d : {64, 128}) EXPECT_GE(check_all(base_case(d, 300, 500, 4, 2, &per_kv)), 2);
}

TEST(SparseForward, Neighborhood2dAnd3dTileOrder) {
  OMNI_REQUIRE_GPU_SPARSE();
  GridMask grid;
  grid.kind = GridMask::Kind::neighborhood;
  grid.ndim = 2;
  grid.shape[0] = 32, grid.shape[1] = 40;
  grid.kernel[0] = 7, grid.kernel[1] = 9;
  grid.dilation[1] = 2;
  grid.stride[0] = 2;
  const auto order = sparse::tile_order(grid, {8, 16, 1});
  const BlockMask m = sparse::neighborhood({1, 1, 1280, 1280, 128, 128}, grid, order);
  check_all(base_case(128, 1280, 1280, 2, 1, &m));
  GridMask video;
  video.kind = GridMask::Kind::neighborhood;
  video.ndim = 3;
  video.shape[0] = 4, video.shape[1] = 12, video.shape[2] = 16;
  video.kernel[0] = 3, video.kernel[1] = 5, video.kernel[2] = 5;
  video.causal[0] = true;
  const BlockMask m3 = sparse::neighborhood({1, 1, 768, 768, 128, 128}, video, sparse::tile_order(video, {2, 4, 16}));
  check_all(base_case(256, 768, 768, 1, 1, &m3));
}

TEST(SparseForward, OptionsMasksAndScoreModsOnTop) {
  OMNI_REQUIRE_GPU_SPARSE();
  // A non-causal random mask under the options' causal + window + sinks: the walk clips the listed blocks to
  // the options' tiles (sink tiles, window tiles); softcap, ALiBi and sink logits on the logits.
  const BlockMask m = random_blocks({2, 1, 1000, 1000, 128, 128}, 1, 1, 2);
  Sm80Case c = base_case(128, 1000, 1000, 4, 2, &m);
  c.batch = 2;
  c.causal = true, c.window_left = 300, c.sinks = 70;
  check_all(c);
  c.softcap = 2.0, c.alibi = Sm80Case::Alibi::per_batch, c.sink_logits = true, c.input_stddev = 2.0;
  check_all(c);
  c.causal = false, c.window_left = 50, c.window_right = 50, c.sinks = 0, c.scale = -0.1;
  check_all(c);
}

TEST(SparseForward, VarlenPerSequenceMasks) {
  OMNI_REQUIRE_GPU_SPARSE();
  const std::vector<int> q_lens = {50, 0, 700, 129, 1}, k_lens = {60, 10, 650, 129, 300};
  const BlockMask per_seq = random_blocks({5, 1, 700, 650, 128, 128}, 1, 2, 1, -1, causal_elements());
  const BlockMask shared = sparse::sliding_window({1, 1, 700, 650, 128, 128}, 100, 0);
  for (const BlockMask* m : {&per_seq, &shared}) {
    Sm80Case c = base_case(128, 0, 0, 3, 3, m);
    c.q_lens = q_lens, c.k_lens = k_lens;
    check_all(c);
  }
}

TEST(SparseForward, FullyMaskedRowsGiveZeroAndMinusInf) {
  OMNI_REQUIRE_GPU_SPARSE();
  // Query blocks 0 and 2 list nothing; others only blocks whose element rule hides some rows entirely.
  const BlockMask::Geometry g{1, 1, 600, 512, 128, 128};
  std::vector<BlockKind> map(static_cast<size_t>(g.q_blocks() * g.k_blocks()), BlockKind::skipped);
  map[static_cast<size_t>(1 * g.k_blocks() + 3)] = BlockKind::partial;
  map[static_cast<size_t>(3 * g.k_blocks() + 0)] = BlockKind::full;
  ElementMask element;
  element.window_right = 0;  // query i sees keys <= i + sk - sq = i - 88: block 3 (keys 384..) hides rows < 472
  const BlockMask m = BlockMask::from_block_map(g, map, element);
  for (int64_t d : {128, 256}) {
    Sm80Case c = base_case(d, 600, 512, 2, 1, &m);
    for (Backend b : backends_for(c)) {
      c.backend = b;
      SCOPED_TRACE(c.describe());
      const Sm80Result r = check_sm80(c);
      for (int64_t i : {0, 127, 256, 383, 200}) {  // rows of query blocks 0, 2 and hidden rows of block 1
        for (int64_t h = 0; h < c.hq; ++h) {
          EXPECT_EQ(r.lse.get(h * c.sq + i), -INFINITY) << "row " << i << " head " << h;
          for (int64_t x = 0; x < c.d; x += 37) EXPECT_EQ(r.out.get((i * c.hq + h) * c.d + x), 0.0);
        }
      }
    }
  }
}

// NaN keys in blocks no query block lists: the output is finite only if those KV tiles are never loaded.
TEST(SparseForward, UnlistedBlocksAreNeverLoaded) {
  OMNI_REQUIRE_GPU_SPARSE();
  const BlockMask::Geometry g{1, 1, 512, 1000, 128, 128};
  std::vector<BlockKind> map(static_cast<size_t>(g.q_blocks() * g.k_blocks()), BlockKind::full);
  for (int64_t qb = 0; qb < g.q_blocks(); ++qb)
    for (int64_t kb : {2, 3, 4}) map[static_cast<size_t>(qb * g.k_blocks() + kb)] = BlockKind::skipped;
  map[1] = BlockKind::partial;
  const BlockMask m = BlockMask::from_block_map(g, map, causal_elements());
  for (int64_t d : {64, 128, 256}) {
    Sm80Case c = base_case(d, 512, 1000, 2, 2, &m);
    c.poison_keys_begin = 256, c.poison_keys_end = 640;
    check_all(c);
  }
}

TEST(SparseForward, SameInputsSameBitsTwice) {
  OMNI_REQUIRE_GPU_SPARSE();
  const BlockMask m = random_blocks({1, 2, 1000, 1000, 128, 128}, 1, 1, 1, 2);
  Sm80Case c = base_case(128, 1000, 1000, 4, 2, &m);
  for (Backend b : backends_for(c)) {
    c.backend = b;
    const Sm80Inputs in = make_inputs(c);
    const Sm80Result first = run_sm80(c, in, /*check=*/true);
    const Sm80Result second = run_sm80(c, in, /*check=*/false);
    EXPECT_TRUE(bitwise_equal(first.out, second.out)) << "outputs differ between two runs: a race? " << c.describe();
    EXPECT_TRUE(bitwise_equal(first.lse, second.lse)) << "LSE differs between two runs: a race? " << c.describe();
  }
}

// compute-sanitizer subset (scripts/gpu_check.sh filters "*Sanitize*"): partial + full blocks, an empty query
// block, the options' causal mask on top, on both kernels.
TEST(SparseForwardSanitize, SmallShapes) {
  OMNI_REQUIRE_GPU_SPARSE();
  const BlockMask m = random_blocks({1, 2, 300, 400, 128, 128}, 1, 1, 1, 1, causal_elements());
  Sm80Case c = base_case(128, 300, 400, 4, 2, &m);
  c.causal = true;
  EXPECT_GE(check_all(c), 2);
  const BlockMask m64 = random_blocks({1, 1, 150, 200, 128, 64}, 1, 1, 1);
  EXPECT_GE(check_all(base_case(256, 150, 200, 2, 1, &m64)), 2);
}

// ---------------------------------------------------------------------------------------------------------
// Refusals.

struct DeviceCall {
  Sm80Inputs in;
  DeviceTensor q, k, v, out;
  DeviceBlockMask mask;
  AttentionOptions options;
  explicit DeviceCall(const Sm80Case& c) : in(make_inputs(c)) {
    q = DeviceTensor::upload(in.q), k = DeviceTensor::upload(in.k), v = DeviceTensor::upload(in.v);
    out = DeviceTensor::allocate(c.dtype, out_like(c, in).view());
    options = in.host_options;
    mask = DeviceBlockMask::upload(*c.mask, 0);
    options.block_mask = mask.view();
  }
  std::optional<std::string> reason(Backend b) {
    for (const auto& [backend, why] : explain_forward(q, k, v, {out.view(), std::nullopt}, options))
      if (backend == b) return why;
    return std::string("not listed");
  }
  // The omniattn::Error message of an explicit call on `b`, or "" when it ran.
  std::string error(Backend b) {
    AttentionOptions o = options;
    o.backend = b;
    try {
      attention_forward(q, k, v, {out.view(), std::nullopt}, o);
    } catch (const Error& e) {
      return e.what();
    }
    return {};
  }
};

TEST(SparseRefusals, Sm90RefusesWhatItsTilesCannotTakeWithTheReason) {
  if (!have_hopper()) GTEST_SKIP() << "no Hopper GPU or sm_90a not compiled";
  struct Refused {
    int64_t d, block_q, block_k;
    const char* names;
  };
  for (const Refused& r : {Refused{128, 64, 128, "block_q"}, Refused{128, 128, 64, "block_k"},
                           Refused{64, 128, 128, "192 rows"}, Refused{256, 64, 64, "block_q"}}) {
    const BlockMask m = random_blocks({1, 1, 300, 300, r.block_q, r.block_k}, 1, 1, 1);
    Sm80Case c = base_case(r.d, 300, 300, 2, 2, &m);
    EXPECT_FALSE(sm90_takes(c));
    DeviceCall call(c);
    const std::string error = call.error(Backend::cuda_sm90);
    EXPECT_NE(error.find(r.names), std::string::npos) << "D=" << r.d << ": " << error;
    EXPECT_NE(error.find("options.block_mask"), std::string::npos) << error;
    EXPECT_EQ(call.reason(Backend::cuda_sm80).has_value(), !sm80_takes(c)) << c.describe();
    c.backend = Backend::automatic;  // falls through to cuda_sm80 (or refuses there too, with a reason)
    if (sm80_takes(c)) check_sm80(c);
  }
  // A host functor cannot run on a GPU: both CUDA backends refuse and say why.
  const BlockMask m = random_blocks({1, 1, 300, 300, 128, 128}, 1, 1, 1);
  DeviceCall call(base_case(128, 300, 300, 2, 2, &m));
  call.options.block_mask->host_element_mask = [](int64_t, int64_t, int64_t, int64_t) { return true; };
  for (Backend b : {Backend::cuda_sm90, Backend::cuda_sm80}) {
    const std::string error = call.error(b);
    EXPECT_NE(error.find("host_element_mask"), std::string::npos) << to_string(b) << ": " << error;
  }
}

TEST(SparseRefusals, BenchmarkCaseRunsOnSm90) {
  if (!have_hopper()) GTEST_SKIP() << "no Hopper GPU or sm_90a not compiled";
  // bf16, D = 128, 128 x 128 blocks, GQA: the fast path, picked by automatic dispatch.
  const BlockMask m = random_blocks({1, 2, 1024, 1024, 128, 128}, 7, 1, 2);
  Sm80Case c = base_case(128, 1024, 1024, 8, 2, &m);
  DeviceCall call(c);
  const auto order = explain_forward(call.q, call.k, call.v, {call.out.view(), std::nullopt}, call.options);
  ASSERT_FALSE(order.empty());
  auto first_taker = std::find_if(order.begin(), order.end(), [](const auto& e) { return !e.second.has_value(); });
  ASSERT_NE(first_taker, order.end());
  EXPECT_EQ(first_taker->first, Backend::cuda_sm90) << (order.front().second ? *order.front().second : "");
  c.backend = Backend::automatic;
  check_sm80(c);
}

}  // namespace
}  // namespace omniattn::testing
