// cuda_sm80 forward: masks (causal, window, sinks), varlen with empty segments, seqused_k, GQA/MQA in both
// tile layouts, softcap, ALiBi, sink logits, strided tensors, skipped KV tiles, and the refusals.
#include <cuda_runtime_api.h>

#include "core/backend.hpp"
#include "gpu/shape_cases.hpp"

namespace omniattn::testing {
namespace {

using detail::cuda::GqaPacking;

TEST(Sm80Features, SlidingWindows) {
  OMNI_REQUIRE_GPU();
  for (const Sm80Case& c : window_cases({}, {{32, 0}, {100, 17}, {0, 0}, {-1, 50}, {50, -1}, {3, 3}, {200, 200}}))
    check_sm80(c);
}

TEST(Sm80Features, AttentionSinks) {
  OMNI_REQUIRE_GPU();
  for (int64_t sinks : {4, 70}) {  // 70: the sink keys span two KV tiles
    Sm80Case c;
    c.causal = true;
    c.window_left = 20;
    c.sinks = sinks;
    c.sq = c.sk = 300;
    check_sm80(c);
    c.sq = 350;  // Sq > Sk: the first rows see nothing (but the sinks once the diagonal reaches them)
    c.sk = 200;
    check_sm80(c);
  }
}

TEST(Sm80Features, VarlenWithEmptySegments) {
  OMNI_REQUIRE_GPU();
  for (const Sm80Case& c : varlen_empty_segment_cases({})) check_sm80(c);
  Sm80Case c = varlen_gqa_window_case({});
  for (GqaPacking packing : {GqaPacking::never, GqaPacking::always}) {
    c.packing = packing;
    check_sm80(c);
  }
}

TEST(Sm80Features, SeqUsedKeysIgnoreTheRest) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.batch = 3;
  c.sq = 100;
  c.sk = 239;
  c.seqused_k = {50, 0, 239};  // keys past these are NaN in K and V
  for (bool causal : {false, true}) {
    c.causal = causal;
    check_sm80(c);
  }
}

TEST(Sm80Features, GroupedQueryHeadsInBothLayouts) {
  OMNI_REQUIRE_GPU();
  for (GqaPacking packing : {GqaPacking::automatic, GqaPacking::never, GqaPacking::always})
    for (int64_t sq : {1, 17, 239}) {
      Sm80Case c;  // 7 query heads on 1 KV head
      c.hq = 7;
      c.hkv = 1;
      c.sq = sq;
      c.sk = 239;
      c.causal = true;
      c.packing = packing;
      check_sm80(c);
      c.hq = 8;  // 4 query heads per KV head, D = 128
      c.hkv = 2;
      c.d = 128;
      c.causal = false;
      check_sm80(c);
    }
}

TEST(Sm80Features, SoftcapAlibiSinkLogits) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.sq = 200;
  c.sk = 180;  // Sq > Sk with causal: empty rows, whose LSE is the sink logit
  c.causal = true;
  c.input_stddev = 2.0;
  c.softcap = 1.5;
  check_sm80(c);
  c.softcap = 0;
  c.alibi = Sm80Case::Alibi::per_head;
  check_sm80(c);
  c.alibi = Sm80Case::Alibi::per_batch;
  check_sm80(c);
  c.alibi = Sm80Case::Alibi::none;
  c.sink_logits = true;
  check_sm80(c);
  // Everything at once, with GQA packed (the per-row head picks slope and sink logit).
  c.softcap = 2.0;
  c.alibi = Sm80Case::Alibi::per_batch;
  c.hq = 6;
  c.hkv = 2;
  c.d = c.dv = 128;
  c.dtype = DType::f16;
  for (GqaPacking packing : {GqaPacking::never, GqaPacking::always}) {
    c.packing = packing;
    check_sm80(c);
  }
}

TEST(Sm80Features, StridedTensors) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;  // [B, H, S, D + 8] storage seen as [B, S, H, D]
  c.strided = true;
  c.d = 96;
  c.hq = 4;
  c.hkv = 2;
  c.sq = c.sk = 150;
  c.causal = true;
  check_sm80(c);
  c.d = 192;
  c.dv = 128;
  c.q_lens = {70, 0, 90};
  c.k_lens = {40, 30, 200};
  check_sm80(c);
}

TEST(Sm80Features, WithoutLse) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.with_lse = false;
  c.sq = c.sk = 100;
  check_sm80(c);
}

// Keys far outside every row's window are NaN: the result is finite only if their KV tiles are never loaded
// (a loaded-but-masked tile would still multiply P = 0 by V = NaN).
TEST(Sm80Features, MaskedTilesAreNeverLoaded) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.batch = 1;
  c.sq = 16;
  c.sk = 1000;  // rows see keys [884 + i - 100 .. 984 + i] and the 4 sinks
  c.causal = true;
  c.window_left = 100;
  c.sinks = 4;
  c.poison_keys_begin = 128;      // past the sink tile, whatever block_n (<= 128)
  c.poison_keys_end = 884 - 128;  // before the first window tile
  for (int64_t d : {64, 128, 256}) {
    c.d = c.dv = d;
    check_sm80(c);
  }
  c.hq = 4;  // packed GQA tile
  c.hkv = 1;
  c.packing = GqaPacking::always;
  check_sm80(c);
}

// Small cases that compute-sanitizer (memcheck, racecheck) runs: scripts/gpu_check.sh filters "*Sanitize*".
TEST(Sm80Sanitize, SmallShapes) {
  OMNI_REQUIRE_GPU();
  Sm80Case c;
  c.batch = 1;
  c.sq = 70;
  c.sk = 130;
  c.causal = true;
  c.sinks = 3;
  c.window_left = 40;
  check_sm80(c);
  Sm80Case v;
  v.d = 128;
  v.q_lens = {0, 33, 65};
  v.k_lens = {5, 0, 70};
  v.alibi = Sm80Case::Alibi::per_head;
  v.sink_logits = true;
  v.hq = 4;
  v.hkv = 1;
  check_sm80(v);
}

// ---------------------------------------------------------------------------------------------------------
// Refusals: each names what is unsupported.

std::string refusal(DType dtype, int64_t d, int64_t dv, int64_t row_pad = 0) {
  const int64_t row = d + row_pad;
  HostTensor shape_q(dtype, {1, 8, 2, d}), shape_v(dtype, {1, 8, 2, dv});
  DeviceTensor q = DeviceTensor::allocate(dtype, shape_q.view(), {8 * 2 * row, 2 * row, row, 1}, 8 * 2 * row + 8);
  DeviceTensor k = DeviceTensor::allocate(dtype, shape_q.view());
  DeviceTensor v = DeviceTensor::allocate(dtype, shape_v.view());
  DeviceTensor out = DeviceTensor::allocate(dtype, shape_v.view());
  const auto p = detail::make_forward_problem(q, k, v, {out.view(), std::nullopt}, {});
  return detail::cuda_sm80_backend().can_run(p).value_or("");
}

TEST(Sm80Refusals, SayWhy) {
  OMNI_REQUIRE_GPU();
  EXPECT_NE(refusal(DType::f32, 64, 64).find("bf16 and f16"), std::string::npos);
  EXPECT_NE(refusal(DType::bf16, 80, 80).find("head dims"), std::string::npos);
  EXPECT_NE(refusal(DType::bf16, 128, 64).find("head dims"), std::string::npos);
  EXPECT_NE(refusal(DType::bf16, 64, 64, /*row_pad=*/1).find("16-byte aligned"), std::string::npos);
  EXPECT_EQ(refusal(DType::bf16, 64, 64, /*row_pad=*/8), "");

  detail::BackwardProblem bp;  // f32: the backward refuses it like the forward
  bp.device = Device::cuda(0);
  const auto why = detail::cuda_sm80_backend().can_run(bp);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("bf16 and f16"), std::string::npos);
  EXPECT_THROW(detail::cuda_sm80_backend().backward(bp), Error);
}

TEST(Sm80Refusals, AutomaticPicksSm80ForCudaTensors) {
  OMNI_REQUIRE_GPU();
  HostTensor shape(DType::bf16, {1, 16, 2, 64});
  DeviceTensor q = DeviceTensor::allocate(DType::bf16, shape.view()),
               k = DeviceTensor::allocate(DType::bf16, shape.view()),
               v = DeviceTensor::allocate(DType::bf16, shape.view()),
               out = DeviceTensor::allocate(DType::bf16, shape.view());
  for (const auto& [backend, why] : explain_forward(q, k, v, {out.view(), std::nullopt}))
    if (backend == Backend::cuda_sm80) EXPECT_FALSE(why.has_value()) << *why;
}

}  // namespace
}  // namespace omniattn::testing
