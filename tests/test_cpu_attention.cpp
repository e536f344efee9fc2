// The fast CPU backend against the float64 oracle, forward and backward, for every option.
// Bound (FlashAttention's rule, support/test_util.hpp): err(cpu) <= 2 * err(same-precision naive) + rounding,
// errors measured against the float64 reference run on float64 copies of the same inputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "hwy/targets.h"
#include "reference/reference.hpp"
#include "support/test_util.hpp"

namespace omniattn::testing {
namespace {

// A tensor with any strides over storage it owns (the head dim stays contiguous).
struct Strided {
  HostTensor storage;  // flat
  TensorView view;     // the logical tensor inside `storage`

  // `permuted`: the physical order puts heads before tokens ([B, H, S, D] / [H, T, D]) and pads each
  // head-dim row by 3 elements, so every stride but the last differs from the contiguous layout.
  static Strided make(DType dtype, const std::vector<int64_t>& shape, bool permuted) {
    const int nd = static_cast<int>(shape.size());
    std::vector<int> order(static_cast<size_t>(nd));  // physical position -> logical dim
    std::iota(order.begin(), order.end(), 0);
    if (permuted && nd >= 3) std::swap(order[static_cast<size_t>(nd - 3)], order[static_cast<size_t>(nd - 2)]);
    const int64_t pad = permuted ? 3 : 0;
    Strided t;
    t.view.dtype = dtype;
    t.view.ndim = nd;
    int64_t stride = 1;
    for (int pos = nd - 1; pos >= 0; --pos) {
      const int dim = order[static_cast<size_t>(pos)];
      t.view.shape[dim] = shape[static_cast<size_t>(dim)];
      t.view.stride[dim] = stride;
      stride *= shape[static_cast<size_t>(dim)] + (pos == nd - 1 ? pad : 0);
    }
    t.storage = HostTensor(dtype, {stride});
    t.view.data = t.storage.view().data;
    return t;
  }
  Strided to(DType dtype) const {
    Strided t{storage.to(dtype), view};
    t.view.dtype = dtype;
    t.view.data = t.storage.view().data;
    return t;
  }
  operator const TensorView&() const { return view; }  // NOLINT: passes where a view is expected

  // Storage offsets of the logical elements, in logical row-major order.
  std::vector<int64_t> offsets() const {
    std::vector<int64_t> out(static_cast<size_t>(view.numel()));
    std::vector<int64_t> idx(static_cast<size_t>(view.ndim), 0);
    for (auto& o : out) {
      o = 0;
      for (int d = 0; d < view.ndim; ++d) o += idx[static_cast<size_t>(d)] * view.stride[d];
      for (int d = view.ndim - 1; d >= 0; --d) {
        if (++idx[static_cast<size_t>(d)] < view.shape[d]) break;
        idx[static_cast<size_t>(d)] = 0;
      }
    }
    return out;
  }
  // The logical elements as a contiguous f64 tensor (flat).
  HostTensor logical() const {
    const auto offs = offsets();
    HostTensor t(DType::f64, {static_cast<int64_t>(offs.size())});
    for (size_t i = 0; i < offs.size(); ++i) t.set(static_cast<int64_t>(i), storage.get(offs[i]));
    return t;
  }
  // True when nothing outside the logical elements changed from NaN (after poison()).
  bool padding_untouched() const {
    std::vector<char> inside(static_cast<size_t>(storage.numel()), 0);
    for (int64_t o : offsets()) inside[static_cast<size_t>(o)] = 1;
    for (int64_t i = 0; i < storage.numel(); ++i)
      if (!inside[static_cast<size_t>(i)] && !std::isnan(storage.get(i))) return false;
    return true;
  }
};

// within_tolerance(), plus for f32 inputs a floor of `floor` · (1 + max|ref|) (2e-6 is 16 f32 ulps at 1;
// PyTorch's f32 atol/rtol pattern). In f32 nothing is rounded to a coarse dtype, so ours and the naive are
// both pure f32 accumulation noise of the same size (ours is smaller on average, measured); on small tensors
// the naive's max error is often 0 or one ulp by chance (and the LSE / d(sink) references are themselves
// stored as f32), so "2 × naive" alone rejects a correct kernel in about 1% of random f32 cases
// (docs/cpu.md). d(sink) sums over every row of the batch with cancellation, hence its larger floor.
// Bugs are orders of magnitude above these floors.
::testing::AssertionResult close_to_reference(const HostTensor& ours, const HostTensor& naive, const HostTensor& ref64,
                                              DType dtype, const char* what, double floor = 2e-6) {
  ::testing::AssertionResult rule = within_tolerance(ours, naive, ref64, dtype, what);
  if (rule || dtype != DType::f32) return rule;
  double ref_max = 0;
  for (int64_t i = 0; i < ref64.numel(); ++i)
    if (std::isfinite(ref64.get(i))) ref_max = std::max(ref_max, std::abs(ref64.get(i)));
  const double err = max_abs_diff(ours, ref64), bound = floor * (1.0 + ref_max);
  if (err <= bound) return ::testing::AssertionSuccess();
  return rule << " and > the f32 floor " << bound;
}

struct Case {
  DType dtype = DType::f32;
  int64_t batch = 1, sq = 17, sk = 17, hq = 2, hkv = 2, d = 32, dv = 32;
  bool causal = false;
  int64_t window_left = -1, window_right = -1, sinks = 0;
  double softcap = 0.0;
  std::optional<double> scale;
  bool alibi = false, alibi_per_batch = false, sink_logits = false;
  std::vector<int64_t> varlen_q, varlen_k;  // non-empty: packed sequences of these lengths
  std::vector<int64_t> seqused_k;           // non-empty: keys used per sequence
  bool strided = false, with_lse = true, backward = true;

  std::string describe() const {
    std::ostringstream s;
    s << to_string(dtype) << " B=" << batch << " Sq=" << sq << " Sk=" << sk << " Hq=" << hq << " Hkv=" << hkv
      << " D=" << d << " Dv=" << dv << (causal ? " causal" : "") << " window=(" << window_left << "," << window_right
      << ") sinks=" << sinks << " softcap=" << softcap << (alibi ? " alibi" : "") << (alibi_per_batch ? "[B,H]" : "")
      << (sink_logits ? " sink_logits" : "") << (strided ? " strided" : "") << (with_lse ? "" : " no-lse");
    if (!varlen_q.empty()) {
      s << " varlen q/k:";
      for (size_t i = 0; i < varlen_q.size(); ++i) s << " " << varlen_q[i] << "/" << varlen_k[i];
    }
    if (!seqused_k.empty()) {
      s << " seqused_k:";
      for (int64_t u : seqused_k) s << " " << u;
    }
    return s.str();
  }
};

HostTensor int_tensor(const std::vector<int64_t>& values) {
  HostTensor t(DType::i32, {static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.set(static_cast<int64_t>(i), static_cast<double>(values[i]));
  return t;
}
HostTensor cumulative(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> cu{0};
  for (int64_t l : lengths) cu.push_back(cu.back() + l);
  return int_tensor(cu);
}
int64_t total(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); }

// Runs one case through the CPU backend, the same-precision naive reference and the float64 oracle.
void run_case(const Case& c) {
  SCOPED_TRACE(c.describe());
  const bool varlen = !c.varlen_q.empty();
  const int64_t batch = varlen ? static_cast<int64_t>(c.varlen_q.size()) : c.batch;
  auto shape = [&](int64_t tokens_per_seq, int64_t total_tokens, int64_t heads, int64_t dim) {
    return varlen ? std::vector<int64_t>{total_tokens, heads, dim}
                  : std::vector<int64_t>{batch, tokens_per_seq, heads, dim};
  };
  const int64_t total_q = varlen ? total(c.varlen_q) : batch * c.sq, total_k = varlen ? total(c.varlen_k) : 0;
  const auto q_shape = shape(c.sq, total_q, c.hq, c.d), k_shape = shape(c.sk, total_k, c.hkv, c.d),
             v_shape = shape(c.sk, total_k, c.hkv, c.dv), o_shape = shape(c.sq, total_q, c.hq, c.dv);

  Strided q = Strided::make(c.dtype, q_shape, c.strided), k = Strided::make(c.dtype, k_shape, c.strided),
          v = Strided::make(c.dtype, v_shape, c.strided);
  fill_normal(q.storage);
  fill_normal(k.storage);
  fill_normal(v.storage);

  AttentionOptions o;
  o.softmax_scale = c.scale;
  o.causal = c.causal;
  o.window_left = c.window_left;
  o.window_right = c.window_right;
  o.sinks = c.sinks;
  o.softcap = c.softcap;
  HostTensor slopes = c.alibi_per_batch ? HostTensor(DType::f32, {batch, c.hq}) : HostTensor(DType::f32, {c.hq});
  for (int64_t i = 0; i < slopes.numel(); ++i) slopes.set(i, 0.05 + 0.4 * std::abs(std::sin(1.0 + i)));
  if (c.alibi) o.alibi_slopes = slopes.view();
  HostTensor sink = random_normal(DType::f32, {c.hq});
  if (c.sink_logits) o.sink_logits = sink.view();
  HostTensor cu_q = cumulative(c.varlen_q), cu_k = cumulative(c.varlen_k), used = int_tensor(c.seqused_k);
  if (varlen) {
    o.cu_seqlens_q = cu_q.view();
    o.cu_seqlens_k = cu_k.view();
  }
  if (!c.seqused_k.empty()) o.seqused_k = used.view();

  auto lse_tensor = [&] {
    HostTensor t = varlen ? HostTensor(DType::f32, {c.hq, total_q}) : HostTensor(DType::f32, {batch, c.hq, c.sq});
    poison(t);
    return t;
  };
  auto output = [&](DType dtype, const std::vector<int64_t>& s) {
    Strided t = Strided::make(dtype, s, c.strided);
    poison(t.storage);
    return t;
  };
  AttentionOptions cpu = o, ref = o;
  cpu.backend = Backend::cpu;
  ref.backend = Backend::reference;

  // Forward. The LSE is always computed (backward needs it); `with_lse = false` also runs without it.
  Strided out = output(c.dtype, o_shape), out_naive = output(c.dtype, o_shape), out64 = output(DType::f64, o_shape);
  HostTensor lse = lse_tensor(), lse_naive = lse_tensor(), lse64 = lse_tensor();
  if (!c.with_lse) {
    attention_forward(q, k, v, {out, std::nullopt}, cpu);
    EXPECT_TRUE(out.padding_untouched());
    poison(out.storage);
  }
  attention_forward(q, k, v, {out, lse.view()}, cpu);
  detail::reference::forward_lowp(detail::make_forward_problem(q, k, v, {out_naive, lse_naive.view()}, o));
  const Strided q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
  attention_forward(q64, k64, v64, {out64, lse64.view()}, ref);
  EXPECT_TRUE(close_to_reference(out.logical(), out_naive.logical(), out64.logical(), c.dtype, "out"));
  EXPECT_TRUE(close_to_reference(lse, lse_naive, lse64, c.dtype, "lse"));
  EXPECT_TRUE(out.padding_untouched());
  if (!c.backward) return;

  // Backward from our forward's O and LSE.
  Strided dout = Strided::make(c.dtype, o_shape, c.strided);
  fill_normal(dout.storage);
  Strided dq = output(c.dtype, q_shape), dk = output(c.dtype, k_shape), dv = output(c.dtype, v_shape);
  Strided dq_n = output(c.dtype, q_shape), dk_n = output(c.dtype, k_shape), dv_n = output(c.dtype, v_shape);
  Strided dq64 = output(DType::f64, q_shape), dk64 = output(DType::f64, k_shape), dv64 = output(DType::f64, v_shape);
  HostTensor dsink(DType::f32, {c.hq}), dsink_n(DType::f32, {c.hq}), dsink64(DType::f32, {c.hq});
  poison(dsink);
  poison(dsink_n);
  poison(dsink64);
  auto sink_grad = [&](HostTensor& t) { return c.sink_logits ? std::optional<TensorView>(t.view()) : std::nullopt; };
  attention_backward(q, k, v, out, lse, dout, {dq, dk, dv, sink_grad(dsink)}, cpu);
  detail::reference::backward_lowp(
      detail::make_backward_problem(q, k, v, out, lse, dout, {dq_n, dk_n, dv_n, sink_grad(dsink_n)}, o));
  attention_backward(q64, k64, v64, out.to(DType::f64), lse, dout.to(DType::f64), {dq64, dk64, dv64, sink_grad(dsink64)},
                     ref);
  EXPECT_TRUE(close_to_reference(dq.logical(), dq_n.logical(), dq64.logical(), c.dtype, "dq"));
  EXPECT_TRUE(close_to_reference(dk.logical(), dk_n.logical(), dk64.logical(), c.dtype, "dk"));
  EXPECT_TRUE(close_to_reference(dv.logical(), dv_n.logical(), dv64.logical(), c.dtype, "dv"));
  EXPECT_TRUE(dq.padding_untouched() && dk.padding_untouched() && dv.padding_untouched());
  if (c.sink_logits) EXPECT_TRUE(close_to_reference(dsink, dsink_n, dsink64, DType::f32, "dsink", 1e-5));
}

const DType kLowpTypes[] = {DType::bf16, DType::f16};

TEST(CpuAttention, TileBreakingLengths) {
  for (int64_t sq : {1, 17, 113, 239})
    for (int64_t sk : {1, 17, 113, 239}) {
      Case c;
      c.sq = sq;
      c.sk = sk;
      c.d = c.dv = 16;
      c.backward = sq * sk <= 113 * 239;
      run_case(c);
    }
}

TEST(CpuAttention, CausalUnequalLengths) {
  for (auto [sq, sk] : {std::pair<int64_t, int64_t>{17, 113}, {113, 17}, {64, 64}, {1, 239}, {239, 1}, {49, 97}}) {
    Case c;
    c.sq = sq;
    c.sk = sk;
    c.causal = true;
    run_case(c);
  }
}

TEST(CpuAttention, SlidingWindowAndSinks) {
  const int64_t windows[][3] = {{8, 0, 0}, {8, 0, 2}, {5, 3, 0}, {0, 0, 1}, {40, -1, 3}, {-1, 6, 0}, {0, 0, 0}};
  for (const auto& w : windows)
    for (auto [sq, sk] : {std::pair<int64_t, int64_t>{113, 113}, {50, 130}, {130, 50}}) {
      Case c;
      c.sq = sq;
      c.sk = sk;
      c.window_left = w[0];
      c.window_right = w[1];
      c.sinks = w[2];
      c.d = c.dv = 24;
      run_case(c);
    }
}

TEST(CpuAttention, SoftcapAlibiSinkLogits) {
  for (int variant = 0; variant < 6; ++variant) {
    Case c;
    c.sq = 70;
    c.sk = 90;
    c.batch = 2;
    c.softcap = variant % 2 ? 0.0 : 2.5;
    c.alibi = variant >= 2;
    c.alibi_per_batch = variant >= 4;
    c.sink_logits = variant % 3 != 1;
    c.causal = variant == 3;
    run_case(c);
  }
}

TEST(CpuAttention, EmptyRowsGiveZeroAndSinkLse) {
  // Causal with Sq > Sk: the first Sq - Sk rows see no key.
  for (bool sink_logits : {false, true}) {
    Case c;
    c.sq = 75;
    c.sk = 9;
    c.causal = true;
    c.sink_logits = sink_logits;
    run_case(c);
  }
}

TEST(CpuAttention, EmptySequences) {
  for (auto [sq, sk] : {std::pair<int64_t, int64_t>{0, 5}, {5, 0}, {0, 0}}) {
    Case c;
    c.sq = sq;
    c.sk = sk;
    c.batch = 2;
    run_case(c);
    c.sink_logits = true;
    run_case(c);
  }
}

TEST(CpuAttention, VarlenWithZeroLengthSegmentsAndSeqused) {
  Case c;
  c.varlen_q = {5, 0, 113, 17, 0, 64};
  c.varlen_k = {7, 3, 100, 0, 0, 65};
  c.causal = true;
  run_case(c);
  c.causal = false;
  c.seqused_k = {7, 1, 37, 0, 0, 64};
  c.sink_logits = true;
  run_case(c);
  c.window_left = 9;
  c.sinks = 2;
  c.strided = true;
  run_case(c);
}

TEST(CpuAttention, SequsedKBatched) {
  Case c;
  c.batch = 3;
  c.sq = 33;
  c.sk = 80;
  c.seqused_k = {80, 0, 47};
  c.causal = true;
  run_case(c);
}

TEST(CpuAttention, GroupedAndMultiQuery) {
  Case c;
  c.hq = 7;
  c.hkv = 1;
  c.sq = 50;
  c.sk = 70;
  run_case(c);
  c.causal = true;
  c.hq = 6;
  c.hkv = 2;
  c.sink_logits = true;
  run_case(c);
}

TEST(CpuAttention, HeadDims) {
  const int64_t dims[][2] = {{192, 128}, {80, 80}, {1, 1}, {3, 5}, {17, 40}, {128, 33}, {512, 512}, {64, 512}};
  for (const auto& dd : dims) {
    Case c;
    c.d = dd[0];
    c.dv = dd[1];
    c.sq = 40;
    c.sk = 70;
    c.hq = c.hkv = 1;
    c.causal = dd[0] == 80;
    run_case(c);
  }
}

TEST(CpuAttention, StridedLayoutsAndNoLse) {
  Case c;
  c.strided = true;
  c.hq = 4;
  c.hkv = 2;
  c.sq = 65;
  c.sk = 50;
  c.d = 40;
  c.dv = 24;
  run_case(c);
  c.with_lse = false;
  c.causal = true;
  run_case(c);
}

TEST(CpuAttention, CustomScale) {
  Case c;
  c.scale = 0.9;
  c.softcap = 5.0;
  run_case(c);
}

TEST(CpuAttention, HalfPrecisionInputs) {
  for (DType t : kLowpTypes) {
    Case c;
    c.dtype = t;
    c.sq = 113;
    c.sk = 77;
    c.hq = 4;
    c.hkv = 2;
    c.d = 40;
    c.dv = 48;
    run_case(c);
    c.causal = true;
    c.softcap = 3.0;
    c.alibi = true;
    c.sink_logits = true;
    c.strided = true;
    run_case(c);
    c.varlen_q = {3, 0, 40};
    c.varlen_k = {9, 4, 0};
    c.causal = false;
    run_case(c);
  }
}

TEST(CpuAttention, BackwardIsBitwiseReproducible) {
  const int64_t n = 97, h = 3, d = 24;
  HostTensor q = random_normal(DType::f32, {1, n, h, d}), k = random_normal(DType::f32, {1, n, 1, d}),
             v = random_normal(DType::f32, {1, n, 1, d}), dout = random_normal(DType::f32, {1, n, h, d});
  HostTensor out(DType::f32, {1, n, h, d}), lse(DType::f32, {1, h, n});
  AttentionOptions o;
  o.backend = Backend::cpu;
  o.causal = true;
  attention_forward(q, k, v, {out, lse.view()}, o);
  HostTensor grads[2][3];
  for (auto& g : grads) {
    g[0] = HostTensor(DType::f32, {1, n, h, d});
    g[1] = HostTensor(DType::f32, {1, n, 1, d});
    g[2] = HostTensor(DType::f32, {1, n, 1, d});
    attention_backward(q, k, v, out, lse, dout, {g[0], g[1], g[2], std::nullopt}, o);
  }
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(std::memcmp(grads[0][i].view().data, grads[1][i].view().data,
                          static_cast<size_t>(grads[0][i].numel()) * sizeof(float)), 0);
}

TEST(CpuAttention, ChosenAutomaticallyForF32AndHalfTypes) {
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    HostTensor q(t, {1, 4, 2, 8}), k(t, {1, 4, 2, 8}), v(t, {1, 4, 2, 8}), out(t, {1, 4, 2, 8});
    std::optional<Backend> chosen;
    std::optional<std::string> cpu_reason;
    for (const auto& [backend, why] : explain_forward(q, k, v, {out, std::nullopt})) {
      if (!why && !chosen) chosen = backend;
      if (backend == Backend::cpu) cpu_reason = why;
    }
    ASSERT_TRUE(chosen.has_value());
    if (t == DType::f64) {
      EXPECT_EQ(*chosen, Backend::reference);
      ASSERT_TRUE(cpu_reason.has_value());
      EXPECT_NE(cpu_reason->find("f64 runs on the reference backend"), std::string::npos) << *cpu_reason;
    } else {
      EXPECT_EQ(*chosen, Backend::cpu) << to_string(t);
    }
  }
  for (const auto& b : list_backends())
    if (b.backend == Backend::cpu) {
      EXPECT_TRUE(b.available);
      std::printf("[omniattn] cpu backend: %s\n", b.summary.c_str());
    }
}

TEST(CpuAttention, RequestingCpuForF64ExplainsWhy) {
  HostTensor q(DType::f64, {1, 4, 1, 8}), out(DType::f64, {1, 4, 1, 8});
  AttentionOptions o;
  o.backend = Backend::cpu;
  try {
    attention_forward(q, q, q, {out, std::nullopt}, o);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f64 runs on the reference backend"), std::string::npos) << e.what();
  }
}

// The AVX2 and scalar builds of the kernels (runtime dispatch picks only the best one the CPU has; this
// forces each lesser target that the CPU also runs, then restores the normal choice).
TEST(CpuAttention, EverySimdTargetOfThisCpu) {
  const int64_t lesser[] = {HWY_AVX2, HWY_SCALAR};
  for (int64_t target : lesser) {
    if (!(hwy::SupportedTargets() & target)) continue;
    hwy::SetSupportedTargetsForTest(target);
    std::string summary;
    for (const auto& b : list_backends())
      if (b.backend == Backend::cpu) summary = b.summary;
    EXPECT_NE(summary.find(hwy::TargetName(target)), std::string::npos) << summary;
    std::vector<Case> cases(4);
    cases[0].sq = 113;
    cases[0].sk = 70;
    Case& options = cases[1];
    options.sq = 70;
    options.sk = 100;
    options.causal = true;
    options.window_left = 9;
    options.sinks = 2;
    options.softcap = 3.0;
    options.alibi = true;
    options.sink_logits = true;
    Case& packed = cases[2];
    packed.dtype = DType::bf16;
    packed.varlen_q = {5, 0, 60};
    packed.varlen_k = {9, 4, 0};
    packed.d = 33;
    packed.dv = 20;
    packed.strided = true;
    Case& grouped = cases[3];
    grouped.dtype = DType::f16;
    grouped.hq = 4;
    grouped.hkv = 1;
    grouped.d = grouped.dv = 80;
    for (const Case& c : cases) {
      SCOPED_TRACE(hwy::TargetName(target));
      run_case(c);
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

// Random shapes and options; small enough to stay fast under sanitizers.
TEST(CpuAttention, RandomSweep) {
  auto& gen = rng();
  auto pick = [&](std::initializer_list<int64_t> v) {
    return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(gen));
  };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(gen) < p; };
  for (int iter = 0; iter < 120; ++iter) {
    Case c;
    c.dtype = chance(0.5) ? DType::f32 : (chance(0.5) ? DType::bf16 : DType::f16);
    c.batch = pick({1, 2});
    c.sq = pick({0, 1, 2, 17, 31, 48, 49, 65, 113});
    c.sk = pick({0, 1, 3, 17, 63, 64, 65, 113});
    c.hkv = pick({1, 2});
    c.hq = c.hkv * pick({1, 3});
    c.d = pick({1, 8, 16, 24, 33, 64, 80});
    c.dv = chance(0.7) ? c.d : pick({4, 16, 48});
    c.causal = chance(0.4);
    if (chance(0.3)) {
      c.window_left = pick({0, 3, 20});
      c.window_right = pick({-1, 0, 5});
      c.sinks = pick({0, 1, 4});
    }
    if (chance(0.25)) c.softcap = 4.0;
    c.alibi = chance(0.25);
    c.sink_logits = chance(0.3);
    c.strided = chance(0.3);
    if (chance(0.25)) {
      const int64_t n = pick({1, 2, 3});
      for (int64_t i = 0; i < n; ++i) {
        c.varlen_q.push_back(pick({0, 5, 40, 70}));
        c.varlen_k.push_back(pick({0, 6, 40, 70}));
      }
    } else if (chance(0.2)) {
      for (int64_t b = 0; b < c.batch; ++b) c.seqused_k.push_back(std::uniform_int_distribution<int64_t>(0, c.sk)(gen));
    }
    run_case(c);
  }
}

// Long enough that every query block sees many key blocks (the online-softmax rescaling path).
TEST(CpuAttention, SlowLongSequences) {
  for (bool causal : {false, true}) {
    Case c;
    c.sq = 799;
    c.sk = 799;
    c.d = c.dv = 64;
    c.causal = causal;
    c.sink_logits = causal;
    run_case(c);
  }
  Case c;
  c.dtype = DType::bf16;
  c.sq = 239;
  c.sk = 799;
  c.hq = 2;
  c.hkv = 1;
  c.d = 128;
  c.dv = 128;
  c.window_left = 100;
  c.causal = true;
  run_case(c);
}

}  // namespace
}  // namespace omniattn::testing
