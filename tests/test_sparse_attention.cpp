// Block-sparse attention on the CPU backend against the float64 reference run with the equivalent dense
// element mask (every block partial, the pair rule as a host functor): forward and backward, odd shapes,
// GQA with shared / per-KV-head / per-head masks, varlen, and combined with AttentionOptions' masks.
// Tolerance: FlashAttention's rule (support/test_util.hpp) with the same-precision naive run on the same
// block mask, plus an f32 floor as in test_cpu_attention.cpp.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/problem.hpp"
#include "reference/reference.hpp"
#include "support/test_util.hpp"
#include "test_sparse_common.hpp"

namespace omniattn::testing {
namespace {

using Pair = std::function<bool(int64_t b, int64_t h, int64_t i, int64_t j)>;

::testing::AssertionResult close(const HostTensor& ours, const HostTensor& naive, const HostTensor& ref64, DType dtype,
                                 const char* what) {
  ::testing::AssertionResult rule = within_tolerance(ours, naive, ref64, dtype, what);
  if (rule || dtype != DType::f32) return rule;
  double ref_max = 0;
  for (int64_t i = 0; i < ref64.numel(); ++i)
    if (std::isfinite(ref64.get(i))) ref_max = std::max(ref_max, std::abs(ref64.get(i)));
  if (max_abs_diff(ours, ref64) <= 2e-6 * (1.0 + ref_max)) return ::testing::AssertionSuccess();
  return rule;
}

// The pair rule of a BlockMask, stated plainly from its dense map and element rule (per call batch b and
// query head h, with the mask's batch/head broadcasting).
Pair rule_of(const BlockMask& m, int64_t hq, std::function<int64_t(int64_t)> sq_of,
             std::function<int64_t(int64_t)> sk_of, Pair host_rule) {
  const auto map = std::make_shared<std::vector<BlockMask::Block>>(m.to_block_map());
  const auto view = std::make_shared<BlockMaskView>(m.view());
  return [=, &m](int64_t b, int64_t h, int64_t i, int64_t j) {
    const BlockMask::Geometry& g = m.geometry();
    const int64_t mb = g.batch == 1 ? 0 : b, mh = g.heads == 1 ? 0 : g.heads == hq ? h : h / (hq / g.heads);
    const auto kind = (*map)[static_cast<size_t>(((mb * g.heads + mh) * g.q_blocks() + i / g.block_q) * g.k_blocks() +
                                                 j / g.block_k)];
    if (kind == BlockMask::Block::full) return true;
    if (kind == BlockMask::Block::skipped) return false;
    const bool element = view->element.visible(mh, i, j, sq_of(b), sk_of(b));
    return element && (!host_rule || host_rule(b, h, i, j));
  };
}

struct SparseCase {
  DType dtype = DType::f32;
  int64_t batch = 1, sq = 113, sk = 113, hq = 2, hkv = 2, d = 32, dv = 32;
  std::vector<int64_t> varlen_q, varlen_k;  // non-empty: packed sequences
  bool causal = false;
  int64_t window_left = -1;
  bool sink_logits = false;
  double softcap = 0;
  const BlockMask* mask = nullptr;
  Pair host_rule;  // optional user functor on the mask under test
};

HostTensor ints(const std::vector<int64_t>& v) {
  HostTensor t(DType::i32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), double(v[i]));
  return t;
}

void run(const SparseCase& c) {
  const bool varlen = !c.varlen_q.empty();
  const int64_t batch = varlen ? static_cast<int64_t>(c.varlen_q.size()) : c.batch;
  auto sum = [](const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); };
  const int64_t tq = varlen ? sum(c.varlen_q) : 0, tk = varlen ? sum(c.varlen_k) : 0;
  auto shape = [&](int64_t s, int64_t total, int64_t h, int64_t d) {
    return varlen ? HostTensor(c.dtype, {total, h, d}) : HostTensor(c.dtype, {batch, s, h, d});
  };
  HostTensor q = shape(c.sq, tq, c.hq, c.d), k = shape(c.sk, tk, c.hkv, c.d), v = shape(c.sk, tk, c.hkv, c.dv);
  fill_normal(q), fill_normal(k), fill_normal(v);
  std::vector<int64_t> cu_q{0}, cu_k{0};
  for (int64_t l : c.varlen_q) cu_q.push_back(cu_q.back() + l);
  for (int64_t l : c.varlen_k) cu_k.push_back(cu_k.back() + l);
  HostTensor cuq = ints(cu_q), cuk = ints(cu_k), sink = random_normal(DType::f32, {c.hq});
  const int64_t max_q = varlen ? *std::max_element(c.varlen_q.begin(), c.varlen_q.end()) : c.sq;
  const int64_t max_k = varlen ? *std::max_element(c.varlen_k.begin(), c.varlen_k.end()) : c.sk;
  auto sq_of = [&](int64_t b) { return varlen ? c.varlen_q[static_cast<size_t>(b)] : c.sq; };
  auto sk_of = [&](int64_t b) { return varlen ? c.varlen_k[static_cast<size_t>(b)] : c.sk; };

  AttentionOptions o;
  o.causal = c.causal;
  o.window_left = c.window_left;
  o.softcap = c.softcap;
  if (c.sink_logits) o.sink_logits = sink.view();
  if (varlen) o.cu_seqlens_q = cuq.view(), o.cu_seqlens_k = cuk.view();
  o.block_mask = c.mask->view();
  if (c.host_rule) o.block_mask->host_element_mask = c.host_rule;
  // The oracle's mask: every block partial, the pair rule of the mask under test as a functor.
  const Pair rule = rule_of(*c.mask, c.hq, sq_of, sk_of, c.host_rule);
  BlockMask::Geometry dense_g{1, 1, max_q, max_k, 128, 128};
  const BlockMask dense = BlockMask::from_block_map(
      dense_g, std::vector<BlockMask::Block>(static_cast<size_t>(dense_g.q_blocks() * dense_g.k_blocks()), BlockMask::Block::partial));
  AttentionOptions oracle = o;
  oracle.block_mask = dense.view();
  oracle.block_mask->host_element_mask = rule;
  AttentionOptions cpu = o;
  cpu.backend = Backend::cpu;
  oracle.backend = Backend::reference;

  auto out_like = [&](DType t) {
    HostTensor x = varlen ? HostTensor(t, {tq, c.hq, c.dv}) : HostTensor(t, {batch, c.sq, c.hq, c.dv});
    poison(x);
    return x;
  };
  auto lse_like = [&] {
    HostTensor x = varlen ? HostTensor(DType::f32, {c.hq, tq}) : HostTensor(DType::f32, {batch, c.hq, c.sq});
    poison(x);
    return x;
  };
  HostTensor out = out_like(c.dtype), out_n = out_like(c.dtype), out64 = out_like(DType::f64);
  HostTensor lse = lse_like(), lse_n = lse_like(), lse64 = lse_like();
  attention_forward(q, k, v, {out, lse.view()}, cpu);
  detail::reference::forward_lowp(detail::make_forward_problem(q, k, v, {out_n, lse_n.view()}, o));
  const HostTensor q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
  attention_forward(q64, k64, v64, {out64, lse64.view()}, oracle);
  EXPECT_TRUE(close(out, out_n, out64, c.dtype, "out"));
  EXPECT_TRUE(close(lse, lse_n, lse64, c.dtype, "lse"));

  HostTensor dout = out_like(c.dtype);
  fill_normal(dout);
  HostTensor dq = q, dk = k, dv = v, dq_n = q, dk_n = k, dv_n = v;
  for (HostTensor* t : {&dq, &dk, &dv, &dq_n, &dk_n, &dv_n}) poison(*t);
  HostTensor dq64 = q64, dk64 = k64, dv64 = v64;
  for (HostTensor* t : {&dq64, &dk64, &dv64}) poison(*t);
  HostTensor ds(DType::f32, {c.hq}), ds_n(DType::f32, {c.hq}), ds64(DType::f32, {c.hq});
  auto sg = [&](HostTensor& t) { return c.sink_logits ? std::optional<TensorView>(t.view()) : std::nullopt; };
  attention_backward(q, k, v, out, lse, dout, {dq, dk, dv, sg(ds)}, cpu);
  detail::reference::backward_lowp(detail::make_backward_problem(q, k, v, out, lse, dout, {dq_n, dk_n, dv_n, sg(ds_n)}, o));
  attention_backward(q64, k64, v64, out.to(DType::f64), lse, dout.to(DType::f64), {dq64, dk64, dv64, sg(ds64)}, oracle);
  EXPECT_TRUE(close(dq, dq_n, dq64, c.dtype, "dq"));
  EXPECT_TRUE(close(dk, dk_n, dk64, c.dtype, "dk"));
  EXPECT_TRUE(close(dv, dv_n, dv64, c.dtype, "dv"));
  if (c.sink_logits) EXPECT_TRUE(close(ds, ds_n, ds64, DType::f32, "dsink"));
}

TEST(SparseAttention, SlidingWindowSharedByAllHeads) {
  for (auto [bq, bk] : {std::pair<int64_t, int64_t>{64, 128}, {128, 64}}) {
    const BlockMask m = sparse::sliding_window({1, 1, 239, 239, bq, bk}, 40, 0);
    SparseCase c;
    c.batch = 2, c.sq = c.sk = 239, c.hq = 4, c.hkv = 2, c.mask = &m;
    run(c);
  }
}

TEST(SparseAttention, PerKvHeadWindowsUnequalLengthsBf16) {
  const BlockMask m = sparse::head_windows({1, 2, 113, 239, 128, 64}, {{{30, 0, 2}}, {{-1, 5, 0}}});
  SparseCase c;
  c.dtype = DType::bf16, c.sq = 113, c.sk = 239, c.hq = 6, c.hkv = 2, c.d = 24, c.dv = 40, c.mask = &m;
  run(c);
}

TEST(SparseAttention, RandomPerHeadBlocksWithUserFunctorF16) {
  // Per (batch, head) random blocks, some query blocks with none (their rows give 0 and LSE -inf).
  const BlockMask::Geometry g{2, 4, 200, 150, 64, 64};
  std::vector<BlockMask::Block> map(static_cast<size_t>(g.batch * g.heads * g.q_blocks() * g.k_blocks()));
  std::uniform_int_distribution<int> kind(0, 2);
  for (auto& b : map) b = static_cast<BlockMask::Block>(kind(rng()));
  for (int64_t kb = 0; kb < g.k_blocks(); ++kb) map[static_cast<size_t>(kb)] = BlockMask::Block::skipped;  // row 0 empty
  const BlockMask m = BlockMask::from_block_map(g, map);
  SparseCase c;
  c.dtype = DType::f16, c.batch = 2, c.sq = 200, c.sk = 150, c.hq = 4, c.hkv = 1, c.mask = &m;
  const uint64_t salt = rng()();
  c.host_rule = [salt](int64_t b, int64_t h, int64_t i, int64_t j) {
    return ((uint64_t(b * 7 + h) * 1000003u + uint64_t(i) * 7919u + uint64_t(j) * 104729u + salt) >> 3) % 3 != 0;
  };
  run(c);
}

TEST(SparseAttention, DocumentsAndedWithOptionsWindow) {
  const std::vector<int64_t> lengths = {17, 64, 1, 95};
  const BlockMask m = sparse::documents({1, 1, 177, 177, 64, 64}, lengths, true);
  SparseCase c;
  c.sq = c.sk = 177, c.window_left = 20, c.mask = &m;
  run(c);
  c.causal = true, c.window_left = -1, c.sink_logits = true, c.softcap = 3.0;
  run(c);
}

TEST(SparseAttention, Neighborhood2dTiledBf16) {
  GridMask grid;
  grid.kind = GridMask::Kind::neighborhood;
  grid.ndim = 2;
  grid.shape[0] = 12, grid.shape[1] = 10;
  grid.kernel[0] = 5, grid.kernel[1] = 3;
  grid.dilation[1] = 2;
  grid.stride[0] = 2;
  grid.causal[1] = true;
  const BlockMask m = sparse::neighborhood({1, 1, 120, 120, 64, 64}, grid, sparse::tile_order(grid, {4, 4, 1}));
  SparseCase c;
  c.dtype = DType::bf16, c.sq = c.sk = 120, c.hq = 2, c.hkv = 1, c.mask = &m;
  run(c);
}

TEST(SparseAttention, VarlenPerSequenceMasks) {
  const BlockMask::Geometry g{3, 1, 130, 129, 64, 128};
  std::vector<BlockMask::Block> map(static_cast<size_t>(3 * g.q_blocks() * g.k_blocks()));
  std::uniform_int_distribution<int> kind(0, 2);
  for (auto& b : map) b = static_cast<BlockMask::Block>(kind(rng()));
  BlockMask m = BlockMask::from_block_map(g, map);
  m.element().window_right = 0;  // partial blocks causal
  SparseCase c;
  c.varlen_q = {50, 0, 130}, c.varlen_k = {60, 10, 129}, c.hq = 3, c.hkv = 3, c.mask = &m;
  run(c);
}

TEST(SparseAttention, PowerOfTwoWithSinkLogitsSoftcap) {
  const BlockMask m = sparse::power_of_two_blocks({1, 1, 700, 700, 64, 64}, 1);
  SparseCase c;
  c.sq = c.sk = 700, c.hq = 1, c.hkv = 1, c.d = c.dv = 16, c.sink_logits = true, c.softcap = 2.0, c.mask = &m;
  run(c);
}

}  // namespace
}  // namespace omniattn::testing
