// The oracle itself: semantics checked against independent hand formulas, and backward against
// central finite differences of the forward.
#include <cmath>

#include "core/problem.hpp"
#include "reference/reference.hpp"
#include "support/test_util.hpp"

namespace omniattn::testing {
namespace {

struct Case {
  int64_t B = 1, Sq = 3, Sk = 5, H = 2, HKV = 2, D = 4, DV = 4;
  AttentionOptions options;
};

struct Fwd64 {
  HostTensor q, k, v, out, lse;
};

Fwd64 forward64(const Case& c, const HostTensor* v_override = nullptr) {
  Fwd64 r;
  r.q = random_normal(DType::f64, {c.B, c.Sq, c.H, c.D});
  r.k = random_normal(DType::f64, {c.B, c.Sk, c.HKV, c.D});
  r.v = v_override ? *v_override : random_normal(DType::f64, {c.B, c.Sk, c.HKV, c.DV});
  r.out = HostTensor(DType::f64, {c.B, c.Sq, c.H, c.DV});
  r.lse = HostTensor(DType::f32, {c.B, c.H, c.Sq});
  poison(r.out);
  poison(r.lse);
  AttentionOptions o = c.options;
  o.backend = Backend::reference;
  attention_forward(r.q, r.k, r.v, {r.out, r.lse.view()}, o);
  return r;
}

// Independent statement of visibility, written from the documentation rather than from SequenceMask.
bool doc_visible(const Case& c, int64_t i, int64_t j) {
  const int64_t diag = i + c.Sk - c.Sq;
  const int64_t right = c.options.causal ? 0 : c.options.window_right;
  if (right >= 0 && j > diag + right) return false;
  if (c.options.window_left >= 0 && j < diag - c.options.window_left && j >= c.options.sinks) return false;
  return true;
}

// V = identity (Dv = Sk, one KV head): out[i, j] is P_ij, so the pattern of zeros is the mask.
void check_mask_pattern(Case c) {
  c.H = c.HKV = 1;
  c.DV = c.Sk;
  HostTensor eye(DType::f64, {1, c.Sk, 1, c.Sk});
  for (int64_t j = 0; j < c.Sk; ++j)
    for (int64_t n = 0; n < c.Sk; ++n) eye.set(j * c.Sk + n, j == n ? 1.0 : 0.0);
  Fwd64 r = forward64(c, &eye);
  for (int64_t i = 0; i < c.Sq; ++i) {
    double row_sum = 0;
    bool any = false;
    for (int64_t j = 0; j < c.Sk; ++j) {
      const double pij = r.out.get(i * c.Sk + j);
      row_sum += pij;
      any |= doc_visible(c, i, j);
      EXPECT_EQ(pij > 0, doc_visible(c, i, j)) << "row " << i << " key " << j;
    }
    if (any) EXPECT_NEAR(row_sum, 1.0, 1e-12);
    else EXPECT_EQ(r.lse.get(i), -INFINITY) << "row " << i;
  }
}

TEST(Reference, MaskCausalBottomRight) {
  Case c; c.Sq = 3; c.Sk = 7; c.options.causal = true; check_mask_pattern(c);
  c.Sq = 7; c.Sk = 3; check_mask_pattern(c);  // the first 4 rows see nothing
}
TEST(Reference, MaskWindowAndSinks) {
  Case c; c.Sq = 9; c.Sk = 9; c.options.window_left = 2; c.options.window_right = 1; check_mask_pattern(c);
  c.options.sinks = 2; check_mask_pattern(c);
  c.options.causal = true; c.options.window_left = 1; check_mask_pattern(c);
  c.Sq = 4; c.Sk = 11; c.options.sinks = 3; c.options.window_left = 0; check_mask_pattern(c);
}

TEST(Reference, HandComputedSoftmax) {
  // One query, two keys, D = 1: out = softmax(scale * q k_j) . v, lse = log sum exp.
  HostTensor q(DType::f64, {1, 1, 1, 1}), k(DType::f64, {1, 2, 1, 1}), v(DType::f64, {1, 2, 1, 1});
  q.set(0, 2.0); k.set(0, 1.0); k.set(1, -0.5); v.set(0, 3.0); v.set(1, -1.0);
  HostTensor out(DType::f64, {1, 1, 1, 1}), lse(DType::f32, {1, 1, 1});
  AttentionOptions o;
  o.softmax_scale = 0.7;
  o.backend = Backend::reference;
  attention_forward(q, k, v, {out, lse.view()}, o);
  const double s0 = 0.7 * 2.0, s1 = 0.7 * -1.0, z = std::exp(s0) + std::exp(s1);
  EXPECT_NEAR(out.get(0), (3.0 * std::exp(s0) - std::exp(s1)) / z, 1e-14);
  EXPECT_NEAR(lse.get(0), std::log(z), 1e-6);
  // Softcap 1.5 and ALiBi slope 0.25 (distance 0 for key 1 at the diagonal, 1 for key 0).
  HostTensor slopes(DType::f32, {1});
  slopes.set(0, 0.25);
  o.softcap = 1.5;
  o.alibi_slopes = slopes.view();
  attention_forward(q, k, v, {out, lse.view()}, o);
  const double c0 = 1.5 * std::tanh(s0 / 1.5) - 0.25, c1 = 1.5 * std::tanh(s1 / 1.5);
  const double zc = std::exp(c0) + std::exp(c1);
  EXPECT_NEAR(out.get(0), (3.0 * std::exp(c0) - std::exp(c1)) / zc, 1e-14);
  // A sink logit adds exp(sink) to the denominator only.
  HostTensor sink(DType::f32, {1});
  sink.set(0, 0.5);
  o.sink_logits = sink.view();
  attention_forward(q, k, v, {out, lse.view()}, o);
  EXPECT_NEAR(out.get(0), (3.0 * std::exp(c0) - std::exp(c1)) / (zc + std::exp(0.5)), 1e-14);
  EXPECT_NEAR(lse.get(0), std::log(zc + std::exp(0.5)), 1e-6);
}

TEST(Reference, EmptyRowWithSinkLogit) {
  Case c; c.Sq = 4; c.Sk = 2; c.options.causal = true;
  HostTensor sink(DType::f32, {c.H});
  sink.set(0, 0.3); sink.set(1, -1.0);
  c.options.sink_logits = sink.view();
  Fwd64 r = forward64(c);
  for (int64_t h = 0; h < c.H; ++h) {
    EXPECT_NEAR(r.lse.get(h * c.Sq + 0), sink.get(h), 1e-7);  // row 0 sees no key
    for (int64_t d = 0; d < c.DV; ++d) EXPECT_EQ(r.out.get((0 * c.H + h) * c.DV + d), 0.0);
  }
}

TEST(Reference, GroupedQueryMatchesRepeatedHeads) {
  Case c; c.H = 6; c.HKV = 2; c.options.causal = true;
  Fwd64 gqa = forward64(c);
  // Repeat each KV head 3 times and run as MHA.
  HostTensor k(DType::f64, {1, c.Sk, 6, c.D}), v(DType::f64, {1, c.Sk, 6, c.DV});
  for (int64_t j = 0; j < c.Sk; ++j)
    for (int64_t h = 0; h < 6; ++h)
      for (int64_t d = 0; d < c.D; ++d) {
        k.set((j * 6 + h) * c.D + d, gqa.k.get((j * 2 + h / 3) * c.D + d));
        v.set((j * 6 + h) * c.DV + d, gqa.v.get((j * 2 + h / 3) * c.DV + d));
      }
  HostTensor out(DType::f64, {1, c.Sq, 6, c.DV});
  AttentionOptions o = c.options;
  o.backend = Backend::reference;
  attention_forward(gqa.q, k, v, {out, std::nullopt}, o);
  EXPECT_EQ(max_abs_diff(out, gqa.out), 0.0);
}

TEST(Reference, VarlenMatchesSeparateCalls) {
  // Two sequences (3 queries/5 keys, 2 queries/0 keys... and 4/4) packed, against each one alone.
  const int lens_q[] = {3, 2, 4}, lens_k[] = {5, 0, 4};
  const int64_t H = 2, D = 3;
  HostTensor q = random_normal(DType::f64, {9, H, D}), k = random_normal(DType::f64, {9, H, D}),
             v = random_normal(DType::f64, {9, H, D});
  HostTensor out(DType::f64, {9, H, D}), lse(DType::f32, {H, 9}), cu_q(DType::i32, {4}), cu_k(DType::i32, {4});
  int oq = 0, ok = 0;
  for (int b = 0; b <= 3; ++b) {
    cu_q.set(b, oq); cu_k.set(b, ok);
    if (b < 3) { oq += lens_q[b]; ok += lens_k[b]; }
  }
  AttentionOptions o;
  o.causal = true;
  o.backend = Backend::reference;
  o.cu_seqlens_q = cu_q.view();
  o.cu_seqlens_k = cu_k.view();
  attention_forward(q, k, v, {out, lse.view()}, o);
  AttentionOptions single;
  single.causal = true;
  single.backend = Backend::reference;
  oq = ok = 0;
  for (int b = 0; b < 3; ++b) {
    const int sq = lens_q[b], sk = lens_k[b];
    auto slice = [&](const HostTensor& t, int off, int n) {
      HostTensor s(DType::f64, {1, n, H, D});
      for (int64_t i = 0; i < n * H * D; ++i) s.set(i, t.get(off * H * D + i));
      return s;
    };
    HostTensor o1(DType::f64, {1, sq, H, D}), l1(DType::f32, {1, H, sq});
    attention_forward(slice(q, oq, sq), slice(k, ok, sk), slice(v, ok, sk), {o1, l1.view()}, single);
    for (int64_t i = 0; i < sq * H * D; ++i) EXPECT_EQ(o1.get(i), out.get(oq * H * D + i));
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < sq; ++t) EXPECT_EQ(l1.get(h * sq + t), lse.get(h * 9 + oq + t));
    oq += sq;
    ok += sk;
  }
}

// Loss L = sum(out * dO); compares the reference backward with central differences of the reference forward.
void check_gradients(Case c) {
  HostTensor sink(DType::f32, {c.H}), slopes(DType::f32, {c.H});
  fill_normal(sink);
  for (int64_t h = 0; h < c.H; ++h) slopes.set(h, 0.1 * (h + 1));
  if (c.options.sink_logits) c.options.sink_logits = sink.view();
  if (c.options.alibi_slopes) c.options.alibi_slopes = slopes.view();
  Fwd64 r = forward64(c);
  HostTensor dout = random_normal(DType::f64, {c.B, c.Sq, c.H, c.DV});
  HostTensor dq(DType::f64, {c.B, c.Sq, c.H, c.D}), dk(DType::f64, {c.B, c.Sk, c.HKV, c.D}),
      dv(DType::f64, {c.B, c.Sk, c.HKV, c.DV}), dsink(DType::f32, {c.H});
  poison(dq); poison(dk); poison(dv);
  AttentionOptions o = c.options;
  o.backend = Backend::reference;
  std::optional<TensorView> dsink_view;
  if (o.sink_logits) dsink_view = dsink.view();
  attention_backward(r.q, r.k, r.v, r.out, r.lse, dout, {dq, dk, dv, dsink_view}, o);
  auto loss = [&]() {
    HostTensor out(DType::f64, {c.B, c.Sq, c.H, c.DV});
    attention_forward(r.q, r.k, r.v, {out, std::nullopt}, o);
    double l = 0;
    for (int64_t i = 0; i < out.numel(); ++i) l += out.get(i) * dout.get(i);
    return l;
  };
  auto check = [&](HostTensor& x, const HostTensor& grad, const char* name) {
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double x0 = x.get(i), eps = 1e-6;
      x.set(i, x0 + eps);
      const double up = loss();
      x.set(i, x0 - eps);
      const double down = loss();
      x.set(i, x0);
      EXPECT_NEAR(grad.get(i), (up - down) / (2 * eps), 1e-6 * (1 + std::abs(grad.get(i)))) << name << "[" << i << "]";
    }
  };
  check(r.q, dq, "dq");
  check(r.k, dk, "dk");
  check(r.v, dv, "dv");
  if (o.sink_logits) {
    for (int64_t h = 0; h < c.H; ++h) {  // the sink is f32: a larger step
      const double s0 = sink.get(h), eps = 1e-3;
      sink.set(h, s0 + eps);
      const double x_up = sink.get(h), up = loss();  // the f32 store rounds the step: divide by the real one
      sink.set(h, s0 - eps);
      const double x_down = sink.get(h), down = loss();
      sink.set(h, s0);
      EXPECT_NEAR(dsink.get(h), (up - down) / (x_up - x_down), 1e-6 * (1 + std::abs(dsink.get(h))))
          << "dsink[" << h << "]";
    }
  }
}

TEST(Reference, GradientsPlain) { check_gradients(Case{}); }
TEST(Reference, GradientsCausalGqaUnequalDims) {
  Case c; c.B = 2; c.Sq = 4; c.Sk = 3; c.H = 4; c.HKV = 2; c.D = 3; c.DV = 5; c.options.causal = true;
  check_gradients(c);
}
TEST(Reference, GradientsSoftcapAlibiSinkLogitWindow) {
  Case c; c.Sq = 5; c.Sk = 6;
  c.options.softcap = 2.0;
  c.options.window_left = 2;
  c.options.sinks = 1;
  HostTensor placeholder(DType::f32, {c.H});
  c.options.alibi_slopes = placeholder.view();  // replaced inside check_gradients
  c.options.sink_logits = placeholder.view();
  check_gradients(c);
}

TEST(Reference, SequsedKZeroesUnusedKeyGradients) {
  Case c; c.B = 2; c.Sk = 6;
  HostTensor used(DType::i32, {2});
  used.set(0, 4); used.set(1, 6);
  c.options.seqused_k = used.view();
  Fwd64 r = forward64(c);
  HostTensor dout = random_normal(DType::f64, {c.B, c.Sq, c.H, c.DV});
  HostTensor dq(DType::f64, {c.B, c.Sq, c.H, c.D}), dk(DType::f64, {c.B, c.Sk, c.HKV, c.D}),
      dv(DType::f64, {c.B, c.Sk, c.HKV, c.DV});
  poison(dk);
  AttentionOptions o = c.options;
  o.backend = Backend::reference;
  attention_backward(r.q, r.k, r.v, r.out, r.lse, dout, {dq, dk, dv, std::nullopt}, o);
  for (int64_t j = 4; j < 6; ++j)
    for (int64_t i = 0; i < c.HKV * c.D; ++i) EXPECT_EQ(dk.get(j * c.HKV * c.D + i), 0.0);
  for (int64_t i = 0; i < dk.numel(); ++i) ASSERT_FALSE(std::isnan(dk.get(i)));
}

TEST(Reference, LowPrecisionNaiveHasSmallNonZeroError) {
  Case c; c.Sq = 17; c.Sk = 33; c.D = 16; c.DV = 16;
  Fwd64 r = forward64(c);
  HostTensor qb = r.q.to(DType::bf16), kb = r.k.to(DType::bf16), vb = r.v.to(DType::bf16);
  HostTensor ob(DType::bf16, {c.B, c.Sq, c.H, c.DV});
  const auto p = detail::make_forward_problem(qb, kb, vb, {ob, std::nullopt}, c.options);
  detail::reference::forward_lowp(p);
  // Oracle on the same (bf16-rounded) inputs.
  HostTensor o64(DType::f64, {c.B, c.Sq, c.H, c.DV});
  AttentionOptions o = c.options;
  o.backend = Backend::reference;
  attention_forward(qb.to(DType::f64), kb.to(DType::f64), vb.to(DType::f64), {o64, std::nullopt}, o);
  const double err = max_abs_diff(ob, o64);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 3e-2);
}

}  // namespace
}  // namespace omniattn::testing
