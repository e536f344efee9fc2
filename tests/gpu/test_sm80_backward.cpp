// cuda_sm80 backward against the float64 reference backward: every head dim and dtype, the lengths that break
// tiling, Sq != Sk, masks (causal, window, sinks), varlen with empty segments, seqused_k, GQA/MQA, softcap,
// ALiBi, sink logits, strided tensors, the deterministic mode (bitwise repeatable) and the refusals.
// Sm80BackwardSanitize.* is the small subset run under compute-sanitizer (memcheck, racecheck).
#include "core/backend.hpp"
#include "gpu/shape_cases.hpp"
#include "gpu/sm80_bwd_case.hpp"

namespace omniattn::testing {
namespace {

TEST(Sm80Backward, EveryHeadDimAndDtype) {
  OMNI_REQUIRE_GPU();
  for (const Sm80Case& c : head_dim_cases({}, {{64, 64}, {96, 96}, {128, 128}, {192, 192}, {192, 128}, {256, 256}}))
    check_sm80_backward(c);
}

TEST(Sm80Backward, OddLengths) {
  OMNI_REQUIRE_GPU();
  for (const Sm80Case& c : odd_length_cases({}, {128})) check_sm80_backward(c);
}

TEST(Sm80Backward, QueriesAndKeysDiffer) {
  OMNI_REQUIRE_GPU();
  for (const Sm80Case& c : unequal_length_cases({})) check_sm80_backward(c);
}

TEST(Sm80Backward, SlidingWindowsAndSinks) {
  OMNI_REQUIRE_GPU();
  for (const Sm80Case& c : window_cases({}, {{32, 0}, {100, 17}, {0, 0}, {-1, 50}, {50, -1}, {3, 3}}))
    check_sm80_backward(c);
  for (int64_t sinks : {4, 70}) {
    Sm80Case c;
    c.d = 256;  // 64-key tiles: 70 sinks span two
    c.causal = true;
    c.window_left = 20;
    c.sinks = sinks;
    c.sq = 350;  // Sq > Sk: the first rows see nothing
    c.sk = 200;
    check_sm80_backward(c);
  }
}

TEST(Sm80Backward, VarlenWithEmptySegments) {
  OMNI_REQUIRE_GPU();
  for (const Sm80Case& c : varlen_empty_segment_cases({})) check_sm80_backward(c);
  check_sm80_backward(varlen_gqa_window_case({}));
}

TEST(Sm80Backward, SeqUsedKeysGetZeroGradients) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.batch = 3;
  c.sq = 100;
  c.sk = 239;
  c.seqused_k = {50, 0, 239};  // keys past these are NaN in K and V; their dK/dV rows must be 0
  for (bool causal : {false, true}) {
    c.causal = causal;
    check_sm80_backward(c);
  }
}

TEST(Sm80Backward, GroupedAndMultiQuery) {
  OMNI_REQUIRE_GPU();
  for (int64_t hkv : {1, 2}) {
    Sm80Case c;
    c.d = 128;
    c.hq = hkv == 1 ? 7 : 6;  // 7 query heads on 1 KV head; 3 per KV head
    c.hkv = hkv;
    c.sq = 113;
    c.sk = 239;
    for (bool causal : {false, true}) {
      c.causal = causal;
      check_sm80_backward(c);
    }
  }
}

TEST(Sm80Backward, SoftcapAlibiSinkLogits) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.hq = 4;
  c.hkv = 2;
  c.sq = c.sk = 239;
  c.causal = true;
  c.softcap = 2.0;
  check_sm80_backward(c);
  c.softcap = 0;
  c.alibi = Sm80Case::Alibi::per_head;
  check_sm80_backward(c);
  c.alibi = Sm80Case::Alibi::per_batch;
  c.softcap = 1.5;
  c.sink_logits = true;
  check_sm80_backward(c);
  c.causal = false;
  c.alibi = Sm80Case::Alibi::none;
  c.softcap = 0;
  c.scale = -0.1;
  check_sm80_backward(c);
}

TEST(Sm80Backward, StridedTensors) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.strided = true;
  c.d = 96;
  c.hq = 4;
  c.hkv = 2;
  c.sq = c.sk = 150;
  c.causal = true;
  check_sm80_backward(c);
  c.d = 192;
  c.dv = 128;
  c.q_lens = {40, 0, 70};
  c.k_lens = {20, 30, 100};
  check_sm80_backward(c);
}

TEST(Sm80Backward, LongRowsFp16) {
  OMNI_REQUIRE_GPU();
  for (DType dtype : {DType::f16, DType::bf16}) {
    Sm80Case c;
    c.dtype = dtype;
    c.d = 128;
    c.batch = 1;
    c.sq = 256;
    c.sk = 1500;
    c.input_stddev = 2.0;
    check_sm80_backward(c);
  }
}

// Deterministic mode: three runs on the same inputs give the same bits (and pass the tolerance).
TEST(Sm80Backward, DeterministicIsBitwiseRepeatable) {
  OMNI_REQUIRE_GPU();
  for (int mask = 0; mask < 3; ++mask) {
    Sm80Case c;
    c.d = 128;
    c.batch = 2;
    c.hq = 4;
    c.hkv = 2;
    c.sq = c.sk = 799;
    c.causal = mask == 1;
    c.window_left = mask == 2 ? 200 : -1;
    c.window_right = mask == 2 ? 30 : -1;
    c.sinks = mask == 2 ? 4 : 0;
    c.sink_logits = mask == 2;
    const BwdInputs in = make_bwd_inputs(c);
    const BwdResult first = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/true);
    for (int run = 0; run < 2; ++run) {
      const BwdResult again = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/false);
      EXPECT_TRUE(same_gradients(first, again, c.sink_logits)) << "deterministic run differs: " << c.describe();
    }
  }
  Sm80Case c;  // varlen + MQA
  c.d = 64;
  c.hq = 7;
  c.hkv = 1;
  c.q_lens = {300, 0, 129};
  c.k_lens = {500, 64, 129};
  c.causal = true;
  const BwdInputs in = make_bwd_inputs(c);
  const BwdResult first = run_sm80_backward(c, in, true, true);
  EXPECT_TRUE(same_gradients(first, run_sm80_backward(c, in, true, false), false)) << c.describe();
}

TEST(Sm80Backward, Refusals) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.d = 32;  // no row in the backward's tuning table
  const BwdInputs in = make_bwd_inputs(c);
  DeviceTensor q = DeviceTensor::upload(in.fwd.q), k = DeviceTensor::upload(in.fwd.k), v = DeviceTensor::upload(in.fwd.v);
  DeviceTensor out = DeviceTensor::upload(in.out), lse = DeviceTensor::upload(in.lse), dout = DeviceTensor::upload(in.dout);
  DeviceTensor dq = DeviceTensor::allocate(c.dtype, in.fwd.q.view()), dk = DeviceTensor::allocate(c.dtype, in.fwd.k.view()),
               dv = DeviceTensor::allocate(c.dtype, in.fwd.v.view());
  AttentionOptions o;
  o.backend = Backend::cuda_sm80;
  try {
    attention_backward(q, k, v, out, lse, dout, {dq.view(), dk.view(), dv.view(), std::nullopt}, o);
    ADD_FAILURE() << "D = 32 was not refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head dims"), std::string::npos) << e.what();
  }
}

// The compute-sanitizer subset: small, every kernel and both modes (memcheck: bounds of every load and store;
// racecheck: shared-memory hazards between the pipeline's barriers).
TEST(Sm80BackwardSanitize, SmallCases) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.hq = 3;
  c.hkv = 1;
  c.q_lens = {0, 70, 130};
  c.k_lens = {20, 0, 150};
  c.causal = true;
  c.window_left = 40;
  c.sinks = 3;
  c.sink_logits = true;
  check_sm80_backward(c, /*deterministic=*/true);
  Sm80Case d;
  d.d = 256;
  d.batch = 1;
  d.sq = 100;
  d.sk = 130;
  d.softcap = 1.5;
  check_sm80_backward(d);
  d.d = d.dv = 128;
  d.seqused_k = {90};
  check_sm80_backward(d);
}

}  // namespace
}  // namespace omniattn::testing
