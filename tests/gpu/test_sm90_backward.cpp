// cuda_sm90 backward (wgmma main kernel, D = Dv = 128, and 64 in HeadDim64) against the float64 reference backward: dtypes, the
// lengths that break tiling, Sq != Sk, masks (causal, window, sinks), varlen with empty segments, seqused_k,
// GQA/MQA, softcap, ALiBi, sink logits, strided tensors, the deterministic mode (bitwise repeatable), block
// masks (64- and 128-key blocks, generators, per-head masks) and the refusal of other head dims.
// Sm90BackwardSanitize.* is the subset run under compute-sanitizer (memcheck, racecheck).
#include <vector>

#include "core/backend.hpp"
#include "core/mask_policy.hpp"
#include "cuda/bwd/bwd_arguments.hpp"
#include "cuda/bwd/bwd_tiles.hpp"
#include "gpu/shape_cases.hpp"
#include "gpu/sm80_bwd_case.hpp"
#include "gpu/timeline_file.hpp"
#include "omniattn/sparse.hpp"

namespace omniattn::testing {
namespace {

Sm80Case sm90_case(int64_t sq, int64_t sk, bool causal = false, int64_t d = 128) {
  Sm80Case c;
  c.backend = Backend::cuda_sm90;
  c.d = c.dv = d;
  c.sq = sq;
  c.sk = sk;
  c.causal = causal;
  return c;
}

TEST(Sm90Backward, DtypesAndMasks) {
  OMNI_REQUIRE_HOPPER();
  for (DType dtype : {DType::bf16, DType::f16})
    for (bool causal : {false, true}) {
      Sm80Case c = sm90_case(239, 239, causal);
      c.dtype = dtype;
      c.batch = 2;
      check_sm80_backward(c);
    }
}

TEST(Sm90Backward, OddLengthsAndShapes) {
  OMNI_REQUIRE_HOPPER();
  for (const Sm80Case& c : odd_length_cases(sm90_case(0, 0), {128})) check_sm80_backward(c);
  for (const Sm80Case& c : unequal_length_cases(sm90_case(0, 0))) check_sm80_backward(c);
}

TEST(Sm90Backward, SlidingWindowsAndSinks) {
  OMNI_REQUIRE_HOPPER();
  for (const Sm80Case& c : window_cases(sm90_case(0, 0), {{32, 0}, {100, 17}, {0, 0}, {-1, 50}, {50, -1}}))
    check_sm80_backward(c);
  Sm80Case c = sm90_case(350, 200, true);  // Sq > Sk: the first rows see nothing; 140 sinks span two tiles
  c.window_left = 20;
  c.sinks = 140;
  check_sm80_backward(c);
}

TEST(Sm90Backward, VarlenSeqUsedAndGroups) {
  OMNI_REQUIRE_HOPPER();
  for (const Sm80Case& c : varlen_empty_segment_cases(sm90_case(0, 0))) check_sm80_backward(c);
  Sm80Case s = sm90_case(100, 239);
  s.batch = 3;
  s.seqused_k = {50, 0, 239};  // keys past these are NaN in K and V; their dK/dV rows must be 0
  check_sm80_backward(s);
  for (int64_t hkv : {1, 2}) {
    Sm80Case g = sm90_case(113, 239, hkv == 2);
    g.hq = hkv == 1 ? 7 : 6;
    g.hkv = hkv;
    check_sm80_backward(g);
  }
}

TEST(Sm90Backward, SoftcapAlibiSinkLogitsStrides) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case(239, 239, true);
  c.hq = 4;
  c.hkv = 2;
  c.softcap = 2.0;
  check_sm80_backward(c);
  c.softcap = 0;
  c.alibi = Sm80Case::Alibi::per_batch;
  c.sink_logits = true;
  check_sm80_backward(c);
  c.causal = false;
  c.alibi = Sm80Case::Alibi::none;
  c.sink_logits = false;
  c.scale = -0.1;
  check_sm80_backward(c);
  Sm80Case s = sm90_case(150, 150, true);
  s.strided = true;
  s.hq = 4;
  s.hkv = 2;
  check_sm80_backward(s);
  for (DType dtype : {DType::f16, DType::bf16}) {  // long rows, larger scores
    Sm80Case l = sm90_case(256, 1500);
    l.dtype = dtype;
    l.input_stddev = 2.0;
    check_sm80_backward(l);
  }
}

TEST(Sm90Backward, DeterministicIsBitwiseRepeatable) {
  OMNI_REQUIRE_HOPPER();
  for (int mask = 0; mask < 4; ++mask) {  // D = 128: no mask, causal, window + sinks; D = 64 (two partial sums)
    Sm80Case c = sm90_case(799, 799, mask == 1, mask == 3 ? 64 : 128);
    c.batch = 2;
    c.hq = 4;
    c.hkv = 2;
    c.window_left = mask == 2 ? 200 : -1;
    c.window_right = mask == 2 ? 30 : -1;
    c.sinks = mask == 2 ? 4 : 0;
    const BwdInputs in = make_bwd_inputs(c);
    const BwdResult first = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/true);
    const BwdResult again = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/false);
    EXPECT_TRUE(same_gradients(first, again, false)) << "deterministic run differs: " << c.describe();
  }
}

// Launch-order switches (detail::cuda::set_bwd_order_override): the deterministic dQ writer's overlapped and serial
// orders add in the same order (bitwise equal gradients, D = 128 and 64); block-sparse launches a head at a time,
// tile-major (the default) and in chunks of 3 all match the reference.
TEST(Sm90Backward, LaunchOrdersAgree) {
  OMNI_REQUIRE_HOPPER();
  struct Restore {
    ~Restore() { detail::cuda::set_bwd_order_override({}); }
  } restore;
  for (int64_t d : {128, 64}) {
    Sm80Case c = sm90_case(799, 799, false, d);
    c.batch = 2;
    c.hq = 4;
    c.hkv = 2;
    const BwdInputs in = make_bwd_inputs(c);
    detail::cuda::set_bwd_order_override({1, -1});
    const BwdResult overlapped = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/true);
    detail::cuda::set_bwd_order_override({0, -1});
    const BwdResult serial = run_sm80_backward(c, in, /*deterministic=*/true, /*check=*/true);
    EXPECT_TRUE(same_gradients(overlapped, serial, false)) << "writer orders differ: " << c.describe();
  }
  const BlockMask m = sparse::sinks_window({1, 1, 799, 799, 128, 128}, 4, 150);
  for (int chunk : {0, 1, 3}) {
    detail::cuda::set_bwd_order_override({-1, chunk});
    Sm80Case c = sm90_case(799, 799);
    c.hq = 2;
    c.hkv = 1;
    check_sm80_backward(c, false, &m);
  }
}

TEST(Sm90Backward, BlockMasks) {
  OMNI_REQUIRE_HOPPER();
  const int64_t n = 799;
  std::vector<BlockMask> masks;
  for (const auto& bs : {std::pair<int64_t, int64_t>{64, 64}, {128, 128}, {64, 128}, {128, 64}}) {
    const BlockMask::Geometry g{1, 1, n, n, bs.first, bs.second};
    masks.push_back(sparse::sliding_window(g, 200, 0));
    masks.push_back(sparse::sinks_window(g, 4, 150));
    masks.push_back(sparse::documents(g, {100, 1, 317, 64, 317}, true));
  }
  masks.push_back(sparse::dilated_blocks({1, 1, n, n, 128, 128}, 3, 2, true));
  for (const BlockMask& m : masks) {
    Sm80Case c = sm90_case(n, n);
    c.hq = 2;
    c.hkv = 1;
    check_sm80_backward(c, false, &m);
  }
  Sm80Case c = sm90_case(500, 500);  // GQA with a mask per KV head, deterministic
  c.hq = 8;
  c.hkv = 2;
  const BlockMask m = sparse::sliding_window({1, 2, 500, 500, 128, 64}, 100, 10);
  check_sm80_backward(c, true, &m);
}

// Grid rules (the sm_90a backward decides a grid alone from ElementMask::grid_table): NATTEN 2-D (dilated) and
// 3-D (strided, one causal axis) neighborhoods in tile order, axial attention, and a grid under a window (the
// per-element path), at D = 128 and 64.
TEST(Sm90Backward, GridMasks) {
  OMNI_REQUIRE_HOPPER();
  GridMask na2 = grid_rule(GridMask::Kind::neighborhood, {32, 24}, {7, 5});
  na2.dilation[1] = 2;
  GridMask na3 = grid_rule(GridMask::Kind::neighborhood, {6, 10, 13}, {3, 5, 4});
  na3.stride[1] = 2;
  na3.causal[0] = true;
  GridMask axial = na2;
  axial.kind = GridMask::Kind::axial;
  axial.causal[0] = true;
  const int64_t t2 = na2.tokens(), t3 = na3.tokens();
  std::vector<BlockMask> masks;
  masks.push_back(sparse::neighborhood({1, 1, t2, t2, 64, 64}, na2, sparse::tile_order(na2, {8, 8, 1})));
  masks.push_back(sparse::neighborhood({1, 1, t3, t3, 128, 128}, na3, sparse::tile_order(na3, {2, 4, 8})));
  masks.push_back(sparse::axial({1, 1, t2, t2, 128, 128}, axial));
  BlockMask windowed = sparse::neighborhood({1, 1, t2, t2, 64, 64}, na2);
  windowed.element().window_left = 100;  // the grid and a window: per element (its blocks stay a superset)
  masks.push_back(std::move(windowed));
  for (const BlockMask& m : masks)
    for (int64_t d : {128, 64}) {
      const int64_t t = m.view().q_tokens;
      Sm80Case c = sm90_case(t, t, false, d);
      c.hq = 2;
      c.hkv = 1;
      EXPECT_FALSE(m.view().element.grid_table.empty());
      check_sm80_backward(c, false, &m);
    }
}

// D = 64: dQ per warpgroup over its own keys (two partial sums); the same features.
// OMNIATTN_BWD_TIMELINE (a debug capture): the last launch's file section holds one record per CTA, each with its
// tile, KV head and step count as the walk gives them (QueryBlocksOfTile x the group's heads), end after start.
TEST(Sm90Backward, CtaTimeline) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case(300, 200, /*causal=*/true);  // 5 query tiles of 64 rows, 2 KV tiles of 128 keys
  c.batch = 1;  // (the records name no sequence)
  c.hq = 4;
  c.hkv = 2;
  const std::vector<TimelineRecord> last =
      last_launch_timeline("OMNIATTN_BWD_TIMELINE", "omniattn_bwd_timeline.txt", [&] { check_sm80_backward(c); });
  ASSERT_EQ(last.size(), 4u) << "2 KV tiles x 2 KV heads";
  const detail::SequenceMask mask{300, 200, -1, 0, 0};
  int seen = 0;
  for (const TimelineRecord& r : last) {
    EXPECT_GT(r.start, 0) << "slot " << r.slot;
    EXPECT_GE(r.end, r.start) << "slot " << r.slot;
    ASSERT_TRUE(r.tile >= 0 && r.tile < 2 && r.head >= 0 && r.head < 2) << "slot " << r.slot;
    const auto blocks = detail::cuda::QueryBlocksOfTile::of(mask, static_cast<int>(r.tile), 64, 128);
    EXPECT_EQ(r.steps, 2 * (blocks.last - blocks.first)) << "slot " << r.slot;
    seen |= 1 << (r.tile * 2 + r.head);
  }
  EXPECT_EQ(seen, 15) << "every (tile, head) once";
}

TEST(Sm90Backward, HeadDim64) {
  OMNI_REQUIRE_HOPPER();
  for (DType dtype : {DType::bf16, DType::f16})
    for (bool causal : {false, true}) {
      Sm80Case c = sm90_case(239, 239, causal, 64);
      c.dtype = dtype;
      c.batch = 2;
      check_sm80_backward(c);
    }
  for (int64_t n : {1, 17, 113, 799}) check_sm80_backward(sm90_case(n, n, true, 64));
  const int64_t shapes[][2] = {{1, 799}, {239, 17}, {113, 400}};
  for (const auto& s : shapes) check_sm80_backward(sm90_case(s[0], s[1], false, 64));
  Sm80Case w = sm90_case(400, 113, false, 64);
  w.window_left = 100;
  w.window_right = 17;
  w.sinks = 70;
  check_sm80_backward(w);
  Sm80Case v = sm90_case(0, 0, true, 64);
  v.hq = 6;
  v.hkv = 2;
  v.q_lens = {0, 17, 113, 5, 239, 1};
  v.k_lens = {13, 0, 239, 5, 300, 1};
  check_sm80_backward(v);
  Sm80Case g = sm90_case(239, 239, true, 64);
  g.hq = 7;
  g.hkv = 1;
  g.softcap = 2.0;
  check_sm80_backward(g);
  g.softcap = 0;
  g.alibi = Sm80Case::Alibi::per_head;
  g.sink_logits = true;
  check_sm80_backward(g);
  Sm80Case s = sm90_case(150, 150, false, 64);
  s.batch = 1;
  s.strided = true;
  s.seqused_k = {100};
  check_sm80_backward(s);
  const BlockMask m = sparse::sinks_window({1, 1, 799, 799, 64, 64}, 4, 150);
  Sm80Case b = sm90_case(799, 799, false, 64);
  b.hq = 2;
  check_sm80_backward(b, false, &m);
}

TEST(Sm90Backward, RefusesOtherHeadDims) {
  OMNI_REQUIRE_HOPPER();
  const detail::BackendImpl& sm90 = detail::cuda_sm90_backend();
  detail::BackwardProblem p;
  p.device = Device::cuda(0);
  p.dtype = DType::bf16;
  p.d = p.dv = 96;
  const auto why = sm90.can_run(p);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("(128, 128)"), std::string::npos) << *why;
}

TEST(Sm90BackwardSanitize, SmallCases) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case(0, 0, true);
  c.hq = 3;
  c.hkv = 1;
  c.q_lens = {0, 70, 130};
  c.k_lens = {20, 0, 150};
  c.window_left = 40;
  c.sinks = 3;
  c.sink_logits = true;
  check_sm80_backward(c, /*deterministic=*/true);
  Sm80Case d = sm90_case(100, 130);
  d.softcap = 1.5;
  check_sm80_backward(d);
  const BlockMask m = sparse::sinks_window({1, 1, 300, 300, 128, 64}, 4, 100);
  Sm80Case s = sm90_case(300, 300);
  s.hq = 2;
  check_sm80_backward(s, false, &m);
  Sm80Case e = sm90_case(0, 0, true, 64);
  e.q_lens = {70, 0, 130};
  e.k_lens = {20, 50, 150};
  check_sm80_backward(e);
  check_sm80_backward(e, /*deterministic=*/true);
}

}  // namespace
}  // namespace omniattn::testing
