// Bad input: every public entry point throws omniattn::Error naming the argument, and writes nothing.
#include <cstring>
#include <functional>

#include "support/test_util.hpp"

namespace omniattn::testing {
namespace {

// A valid small problem; each test breaks one thing.
struct Call {
  int64_t B = 2, S = 5, H = 4, HKV = 2, D = 8, DV = 8;
  HostTensor q = random_normal(DType::f32, {B, S, H, D});
  HostTensor k = random_normal(DType::f32, {B, S, HKV, D});
  HostTensor v = random_normal(DType::f32, {B, S, HKV, DV});
  HostTensor out{DType::f32, {B, S, H, DV}};
  HostTensor lse{DType::f32, {B, H, S}};
  TensorView qv = q, kv = k, vv = v, outv = out;
  std::optional<TensorView> lsev = lse.view();
  AttentionOptions options;
  Call() {
    fill_normal(out);
    fill_normal(lse);
  }
  void run() const { attention_forward(qv, kv, vv, {outv, lsev}, options); }
};

// Runs `call` and expects an Error about `argument`, with out and lse untouched.
void expect_refused(Call& c, const std::string& argument) {
  const HostTensor out_before = c.out, lse_before = c.lse;
  try {
    c.run();
    ADD_FAILURE() << "no error; expected one about " << argument;
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
    EXPECT_FALSE(e.expected().empty());
    EXPECT_FALSE(e.given().empty());
    EXPECT_NE(std::string(e.what()).find(argument), std::string::npos);
  }
  EXPECT_EQ(std::memcmp(c.out.view().data, out_before.view().data, c.out.numel() * 4), 0) << "out was written";
  EXPECT_EQ(std::memcmp(c.lse.view().data, lse_before.view().data, c.lse.numel() * 4), 0) << "lse was written";
}

TEST(Validation, ValidCallRuns) {
  Call c;
  c.run();
  for (int64_t i = 0; i < c.out.numel(); ++i) ASSERT_TRUE(std::isfinite(c.out.get(i)));
}

TEST(Validation, Shapes) {
  { Call c; c.qv.ndim = 3; expect_refused(c, "q"); }
  { Call c; c.kv.shape[3] = 7; expect_refused(c, "k"); }                       // head dim differs from q
  { Call c; c.kv.shape[0] = 1; expect_refused(c, "k"); }                       // batch
  { Call c; c.vv.shape[1] = 4; expect_refused(c, "v"); }                       // keys differ from k
  { Call c; c.vv.shape[2] = 1; expect_refused(c, "v"); }                       // heads differ from k
  { Call c; c.qv.shape[2] = 3; expect_refused(c, "q"); }                       // 3 heads on 2 KV heads
  { Call c; c.outv.shape[3] = 4; expect_refused(c, "outputs.out"); }
  { Call c; c.lsev->shape[2] = 4; expect_refused(c, "outputs.lse"); }
  { Call c; c.qv.shape[0] = -1; expect_refused(c, "q"); }
}

TEST(Validation, HeadDimSupport) {
  Call c;
  c.qv.shape[3] = 0;
  c.kv.shape[3] = 0;
  expect_refused(c, "q");
  Call big;
  big.qv.shape[3] = 1024;
  expect_refused(big, "q");
}

TEST(Validation, Strides) {
  { Call c; c.qv.stride[3] = 2; expect_refused(c, "q"); }                      // head dim not contiguous
  { Call c; c.kv.stride[1] = -1; expect_refused(c, "k"); }
  { Call c; c.outv.stride[3] = 3; expect_refused(c, "outputs.out"); }
}

TEST(Validation, Overflow) {
  Call c;
  c.vv.stride[0] = int64_t{1} << 62;
  expect_refused(c, "v");
}

TEST(Validation, Dtypes) {
  { Call c; c.kv.dtype = DType::f16; expect_refused(c, "k"); }
  { Call c; c.qv.dtype = DType::i32; expect_refused(c, "q"); }
  { Call c; c.outv.dtype = DType::bf16; expect_refused(c, "outputs.out"); }
  { Call c; c.lsev->dtype = DType::f64; expect_refused(c, "outputs.lse"); }
}

TEST(Validation, Devices) {
  { Call c; c.kv.device = Device::cuda(0); expect_refused(c, "k"); }
  { Call c; c.outv.device = Device::cuda(1); expect_refused(c, "outputs.out"); }
}

TEST(Validation, NullData) {
  Call c;
  c.vv.data = nullptr;
  expect_refused(c, "v");
}

TEST(Validation, WindowSinkScaleSoftcap) {
  { Call c; c.options.window_left = -2; expect_refused(c, "options.window_left"); }
  { Call c; c.options.window_right = -5; expect_refused(c, "options.window_right"); }
  { Call c; c.options.sinks = -1; expect_refused(c, "options.sinks"); }
  { Call c; c.options.softcap = -1; expect_refused(c, "options.softcap"); }
  { Call c; c.options.softcap = std::nan(""); expect_refused(c, "options.softcap"); }
  { Call c; c.options.softmax_scale = 0.0; expect_refused(c, "options.softmax_scale"); }
  { Call c; c.options.softmax_scale = INFINITY; expect_refused(c, "options.softmax_scale"); }
}

TEST(Validation, AlibiAndSinkLogits) {
  HostTensor wrong(DType::f32, {3});
  HostTensor wrong_dtype(DType::f64, {4});
  { Call c; c.options.alibi_slopes = wrong.view(); expect_refused(c, "options.alibi_slopes"); }
  { Call c; c.options.alibi_slopes = wrong_dtype.view(); expect_refused(c, "options.alibi_slopes"); }
  { Call c; c.options.sink_logits = wrong.view(); expect_refused(c, "options.sink_logits"); }
}

// Varlen: q [total, H, D] with cu_seqlens.
struct VarlenCall : Call {
  HostTensor cu_q{DType::i32, {3}}, cu_k{DType::i32, {3}};
  VarlenCall() {
    q = random_normal(DType::f32, {9, H, D});
    k = random_normal(DType::f32, {7, HKV, D});
    v = random_normal(DType::f32, {7, HKV, DV});
    out = HostTensor(DType::f32, {9, H, DV});
    lse = HostTensor(DType::f32, {H, 9});
    fill_normal(out);
    fill_normal(lse);
    qv = q; kv = k; vv = v; outv = out; lsev = lse.view();
    set(cu_q, {0, 4, 9});
    set(cu_k, {0, 0, 7});  // a zero-length key segment
    options.cu_seqlens_q = cu_q.view();
    options.cu_seqlens_k = cu_k.view();
  }
  static void set(HostTensor& t, std::initializer_list<int> values) {
    int i = 0;
    for (int x : values) t.set(i++, x);
  }
};

TEST(Validation, VarlenValidCallRuns) {
  VarlenCall c;
  c.run();
  for (int64_t t = 0; t < 4; ++t)  // sequence 0 has no keys: output 0, lse -inf
    for (int64_t h = 0; h < c.H; ++h) {
      EXPECT_EQ(c.out.get((t * c.H + h) * c.DV), 0.0);
      EXPECT_EQ(c.lse.get(h * 9 + t), -INFINITY);
    }
}

TEST(Validation, CuSeqlens) {
  { VarlenCall c; VarlenCall::set(c.cu_q, {0, 5, 4}); expect_refused(c, "options.cu_seqlens_q"); }  // decreasing
  { VarlenCall c; VarlenCall::set(c.cu_q, {1, 4, 9}); expect_refused(c, "options.cu_seqlens_q"); }  // not from 0
  { VarlenCall c; VarlenCall::set(c.cu_k, {0, 3, 6}); expect_refused(c, "options.cu_seqlens_k"); }  // total 6 != 7
  { VarlenCall c; c.options.cu_seqlens_k.reset(); expect_refused(c, "options.cu_seqlens_k"); }
  { VarlenCall c; HostTensor f(DType::f32, {3}); c.options.cu_seqlens_q = f.view(); expect_refused(c, "options.cu_seqlens_q"); }
  { VarlenCall c; HostTensor two(DType::i32, {2}); VarlenCall::set(two, {0, 7}); c.options.cu_seqlens_k = two.view();
    expect_refused(c, "options.cu_seqlens_k"); }
  { Call c; HostTensor cu(DType::i32, {3}); c.options.cu_seqlens_k = cu.view(); expect_refused(c, "options.cu_seqlens_k"); }
}

TEST(Validation, SequsedK) {
  HostTensor used(DType::i32, {2});
  used.set(0, 3);
  used.set(1, 6);  // > 5 keys stored
  Call c;
  c.options.seqused_k = used.view();
  expect_refused(c, "options.seqused_k");
}

TEST(Validation, EmptySequencesAreValid) {
  // Sk = 0: every row has no visible key.
  Call c;
  c.kv.shape[1] = 0;
  c.vv.shape[1] = 0;
  c.run();
  for (int64_t i = 0; i < c.out.numel(); ++i) ASSERT_EQ(c.out.get(i), 0.0);
  for (int64_t i = 0; i < c.lse.numel(); ++i) ASSERT_EQ(c.lse.get(i), -INFINITY);
}

TEST(Validation, Aliasing) {
  { Call c; c.outv.data = c.q.view().data; expect_refused(c, "outputs.out"); }
  { Call c; c.lsev->data = c.out.view().data; expect_refused(c, "outputs.lse"); }
}

TEST(Validation, BackwardArguments) {
  Call c;
  c.run();
  HostTensor dout = random_normal(DType::f32, {c.B, c.S, c.H, c.DV});
  HostTensor dq(DType::f32, {c.B, c.S, c.H, c.D}), dk(DType::f32, {c.B, c.S, c.HKV, c.D}),
      dv(DType::f32, {c.B, c.S, c.HKV, c.DV});
  auto refused = [&](BackwardOutputs g, const TensorView& dout_view, const AttentionOptions& o, const char* arg) {
    poison(dq);
    try {
      attention_backward(c.q, c.k, c.v, c.out, c.lse, dout_view, g, o);
      ADD_FAILURE() << "no error about " << arg;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), arg) << e.what();
    }
    for (int64_t i = 0; i < dq.numel(); ++i) ASSERT_TRUE(std::isnan(dq.get(i))) << "dq written on error";
  };
  BackwardOutputs ok{dq, dk, dv, std::nullopt};
  BackwardOutputs alias_dq_k{dq, dk, dv, std::nullopt};
  alias_dq_k.dk = c.k;  // writing into an input
  refused(alias_dq_k, dout, {}, "grads.dk");
  BackwardOutputs bad_shape = ok;
  bad_shape.dv.shape[3] = 3;
  refused(bad_shape, dout, {}, "grads.dv");
  TensorView bad_dout = dout;
  bad_dout.dtype = DType::bf16;
  refused(ok, bad_dout, {}, "dout");
  HostTensor sink(DType::f32, {c.H});
  AttentionOptions with_sink;
  with_sink.sink_logits = sink.view();
  refused(ok, dout, with_sink, "grads.dsink_logits");
  BackwardOutputs same_twice = ok;
  same_twice.dv = TensorView::contiguous(dk.view().data, DType::f32, {c.B, c.S, c.HKV, c.DV});
  refused(same_twice, dout, {}, "grads.dk");
}

TEST(Validation, BackendRefusalExplains) {
  Call c;
  c.q = c.q.to(DType::f64);
  c.k = c.k.to(DType::f64);
  c.v = c.v.to(DType::f64);
  c.out = HostTensor(DType::f64, {c.B, c.S, c.H, c.DV});
  c.qv = c.q; c.kv = c.k; c.vv = c.v; c.outv = c.out;
  c.options.backend = Backend::cpu;
  expect_refused(c, "options.backend");
  c.options.backend = Backend::automatic;  // falls back to the reference, which takes f64
  c.run();
}

}  // namespace
}  // namespace omniattn::testing
