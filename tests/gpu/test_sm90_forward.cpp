// cuda_sm90 (TMA + wgmma) forward against the float64 reference: every head dim and dtype, odd lengths,
// Sq != Sk, every mask and score option, GQA, varlen and seqused_k, strided layouts, masked tiles never loaded,
// reproducibility, and the refusals that send calls to cuda_sm80. Skipped without a Hopper GPU.
#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "cuda/flash/sm90_config.hpp"
#include "gpu/shape_cases.hpp"
#include "gpu/timeline_file.hpp"

namespace omniattn::testing {
namespace {

Sm80Case sm90_case() {
  Sm80Case c;
  c.backend = Backend::cuda_sm90;
  return c;
}

TEST(Sm90Forward, EveryHeadDimAndDtype) {
  OMNI_REQUIRE_HOPPER();
  for (const Sm80Case& c : head_dim_cases(sm90_case(), {{64, 64}, {128, 128}, {256, 256}})) check_sm80(c);
}

TEST(Sm90Forward, OddLengths) {
  OMNI_REQUIRE_HOPPER();
  for (const Sm80Case& c : odd_length_cases(sm90_case(), {64, 128})) check_sm80(c);
}

TEST(Sm90Forward, QueriesAndKeysDiffer) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case base = sm90_case();
  base.d = 128;
  for (const Sm80Case& c : unequal_length_cases(base)) check_sm80(c);
}

TEST(Sm90Forward, LongRowsAndLargeLogits) {
  OMNI_REQUIRE_HOPPER();
  for (DType dtype : {DType::f16, DType::bf16})
    for (int64_t d : {64, 128, 256}) {
      Sm80Case c = sm90_case();
      c.dtype = dtype;
      c.d = d;
      c.batch = 1;
      c.sq = 300;
      c.sk = 1500;           // many KV tiles, more than the pipeline's stages: every buffer is reused
      c.input_stddev = 2.0;  // near one-hot rows stress the online softmax
      check_sm80(c);
    }
}

// Key lengths around 2k (the bound a dynamic persistent schedule was tried with, docs/kernels.md step 7), every
// head dim, causal and not.
TEST(Sm90Forward, KeysAroundTwoThousand) {
  OMNI_REQUIRE_HOPPER();
  for (int64_t d : {64, 128, 256})
    for (int64_t sk : {2048, 2049, 3000})
      for (bool causal : {false, true}) {
        Sm80Case c = sm90_case();
        c.d = d;
        c.batch = 1;
        c.hq = c.hkv = 2;
        c.sq = 257;
        c.sk = sk;
        c.causal = causal;
        check_sm80(c);
      }
}

TEST(Sm90Features, WindowsSinksAndScale) {
  OMNI_REQUIRE_HOPPER();
  for (int64_t d : {64, 128}) {
    Sm80Case c = sm90_case();
    c.d = d;
    c.sq = c.sk = 700;
    c.window_left = 150;
    c.window_right = 20;
    check_sm80(c);
    c.window_right = -1;
    c.causal = true;
    c.sinks = 5;
    check_sm80(c);
    c.sinks = 0;
    c.window_left = -1;
    c.scale = -0.1;  // a negative scale takes the general-logits path
    check_sm80(c);
  }
}

TEST(Sm90Features, GroupedQueryHeads) {
  OMNI_REQUIRE_HOPPER();
  for (int64_t sq : {1, 17, 239}) {
    Sm80Case c = sm90_case();  // 7 query heads on 1 KV head
    c.hq = 7;
    c.hkv = 1;
    c.sq = sq;
    c.sk = 239;
    c.causal = true;
    check_sm80(c);
    c.hq = 8;  // 4 query heads per KV head, D = 128
    c.hkv = 2;
    c.d = 128;
    c.causal = false;
    check_sm80(c);
  }
}

TEST(Sm90Features, SoftcapAlibiSinkLogits) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case();
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
  c.softcap = 2.0;  // everything at once
  c.alibi = Sm80Case::Alibi::per_batch;
  c.hq = 6;
  c.hkv = 2;
  c.d = 128;
  c.dtype = DType::f16;
  check_sm80(c);
}

TEST(Sm90Features, StridedTensorsAndNoLse) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case();
  c.strided = true;  // [B, H, S, D + 8]: TMA strides are not the packed ones
  c.d = 128;
  c.sq = 150;
  c.sk = 333;
  check_sm80(c);
  c.strided = false;
  c.with_lse = false;
  c.causal = true;
  check_sm80(c);
}

// Keys far outside every row's window are NaN: the result is finite only if their KV tiles are never loaded.
TEST(Sm90Features, MaskedTilesAreNeverLoaded) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case();
  c.batch = 1;
  c.sq = 16;
  c.sk = 1000;
  c.causal = true;
  c.window_left = 100;
  c.sinks = 4;
  c.poison_keys_begin = 128;
  c.poison_keys_end = 884 - 128;
  for (int64_t d : {64, 128, 256}) {
    c.d = c.dv = d;
    check_sm80(c);
  }
}

TEST(Sm90Forward, SameInputsSameBitsTwice) {
  OMNI_REQUIRE_HOPPER();
  for (bool causal : {false, true}) {
    Sm80Case c = sm90_case();
    c.d = 128;
    c.batch = 2;
    c.hq = 4;
    c.hkv = 2;
    c.sq = c.sk = 799;
    c.causal = causal;
    const Sm80Inputs in = make_inputs(c);
    const Sm80Result first = run_sm80(c, in, /*check=*/true);
    const Sm80Result second = run_sm80(c, in, /*check=*/false);
    EXPECT_TRUE(bitwise_equal(first.out, second.out)) << "outputs differ between two runs: a race? " << c.describe();
    EXPECT_TRUE(bitwise_equal(first.lse, second.lse)) << "LSE differs between two runs: a race? " << c.describe();
  }
}

// Both schedules on shapes with more tiles than SMs (so the dynamic one draws tickets): each run checked against
// the reference (a ticket counter left non-zero by the previous launch would skip tiles: their poisoned rows fail),
// and both schedules give the same bits (a tile computes the same whichever CTA runs it).
class ScheduleOverride {
 public:
  explicit ScheduleOverride(detail::cuda::Sm90Schedule s) : saved_(detail::cuda::sm90_schedule_override()) {
    detail::cuda::set_sm90_schedule(s);
  }
  ~ScheduleOverride() { detail::cuda::set_sm90_schedule(saved_); }

 private:
  detail::cuda::Sm90Schedule saved_;
};

TEST(Sm90Forward, PersistentAndPerTileSchedulesAgree) {
  OMNI_REQUIRE_HOPPER();
  for (int64_t d : {64, 128, 256})
    for (bool causal : {false, true}) {
      Sm80Case c = sm90_case();
      c.d = d;
      c.batch = 3;
      c.hq = 8;
      c.hkv = 2;
      c.sq = c.sk = 1100;  // 288 (D = 128, 256) or 144 (D = 64) query tiles
      c.causal = causal;
      c.window_left = causal ? 700 : -1;
      const Sm80Inputs in = make_inputs(c);
      Sm80Result persistent[3], per_tile;
      {
        ScheduleOverride forced(detail::cuda::Sm90Schedule::persistent);
        for (Sm80Result& r : persistent) r = run_sm80(c, in, /*check=*/true);
      }
      {
        ScheduleOverride forced(detail::cuda::Sm90Schedule::per_tile);
        per_tile = run_sm80(c, in, /*check=*/true);
      }
      for (const Sm80Result& r : persistent) {
        EXPECT_TRUE(bitwise_equal(r.out, per_tile.out)) << "schedules give different outputs: " << c.describe();
        EXPECT_TRUE(bitwise_equal(r.lse, per_tile.lse)) << "schedules give different LSE: " << c.describe();
      }
    }
}

// Varlen under the dynamic schedule: tiles past a short sequence's end are skipped by the producer alone.
TEST(Sm90Features, PersistentVarlen) {
  OMNI_REQUIRE_HOPPER();
  ScheduleOverride forced(detail::cuda::Sm90Schedule::persistent);
  for (bool causal : {false, true}) {
    Sm80Case c = sm90_case();
    c.d = 128;
    c.hq = 16;
    c.hkv = 4;
    c.q_lens = {1500, 0, 17, 900, 129, 1};
    c.k_lens = {1500, 40, 300, 900, 129, 1000};
    c.causal = causal;
    check_sm80(c);
  }
}

// compute-sanitizer subset (scripts/gpu_check.sh filters "*Sanitize*").
TEST(Sm90Sanitize, SmallShapes) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case();
  c.batch = 1;
  c.sq = 200;
  c.sk = 330;
  c.causal = true;
  c.sinks = 3;
  c.window_left = 140;
  check_sm80(c);
  c.d = 64;
  c.hq = 3;
  c.hkv = 1;
  c.alibi = Sm80Case::Alibi::per_head;
  c.sink_logits = true;
  check_sm80(c);
  Sm80Case v = sm90_case();  // varlen: per-sequence tensor maps read from global memory
  v.d = 128;
  v.q_lens = {0, 33, 65};
  v.k_lens = {5, 0, 70};
  v.causal = true;
  check_sm80(v);
  ScheduleOverride forced(detail::cuda::Sm90Schedule::persistent);  // more tiles than SMs: tickets drawn
  Sm80Case many = sm90_case();
  many.d = 128;
  many.hq = 68;
  many.hkv = 4;
  many.sq = many.sk = 200;
  many.causal = true;
  check_sm80(many);
}

// Varlen: each sequence gets its own tensor maps, so TMA zero-fills past its end (no read of the next one).
TEST(Sm90Features, VarlenWithEmptySegments) {
  OMNI_REQUIRE_HOPPER();
  for (int64_t d : {64, 128, 256})
    for (Sm80Case c : varlen_empty_segment_cases(sm90_case())) {
      c.d = d;
      check_sm80(c);
    }
  Sm80Case c = varlen_gqa_window_case(sm90_case());  // + sink logits
  c.sink_logits = true;
  check_sm80(c);
}

TEST(Sm90Features, SeqUsedKeysIgnoreTheRest) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case();
  c.d = 128;
  c.batch = 3;
  c.sq = 100;
  c.sk = 239;
  c.seqused_k = {50, 0, 239};  // keys past these are NaN in K and V: they must never be read
  for (bool causal : {false, true}) {
    c.causal = causal;
    check_sm80(c);
  }
}

// OMNIATTN_FWD_TIMELINE (a debug capture): the last launch holds one record per tile, each (query tile, head) once,
// end after start, and under a causal mask the KV tile count grows with the query tile.
TEST(Sm90Forward, TileTimeline) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case();
  c.sq = c.sk = 300;
  c.batch = 1;  // (the records name no sequence)
  c.hq = c.hkv = 2;
  c.causal = true;
  const std::vector<TimelineRecord> last =
      last_launch_timeline("OMNIATTN_FWD_TIMELINE", "omniattn_fwd_timeline.txt", [&] { check_sm80(c); });
  std::map<std::pair<long long, long long>, long long> steps;  // (head, query tile) -> KV tiles
  long long max_tile = -1;
  for (const TimelineRecord& r : last) {
    EXPECT_GT(r.start, 0) << "slot " << r.slot;
    EXPECT_GE(r.end, r.start) << "slot " << r.slot;
    ASSERT_TRUE(r.tile >= 0 && r.head >= 0 && r.head < 2 && r.steps >= 1) << "slot " << r.slot;
    EXPECT_TRUE(steps.emplace(std::make_pair(r.head, r.tile), r.steps).second) << "twice: slot " << r.slot;
    max_tile = std::max(max_tile, r.tile);
  }
  EXPECT_EQ(static_cast<long long>(last.size()), 2 * (max_tile + 1)) << "every (query tile, head) once";
  for (const auto& [key, kv] : steps) {
    const auto previous = steps.find({key.first, key.second - 1});
    if (previous != steps.end()) EXPECT_GE(kv, previous->second) << "head " << key.first << " tile " << key.second;
  }
}

TEST(Sm90Refusals, OtherHeadDimsGoToSm80) {
  OMNI_REQUIRE_HOPPER();
  Sm80Case c = sm90_case();
  c.d = 96;
  c.sq = c.sk = 50;
  const Sm80Inputs in = make_inputs(c);
  HostTensor out = out_like(c, in);
  DeviceTensor q = DeviceTensor::upload(in.q), k = DeviceTensor::upload(in.k), v = DeviceTensor::upload(in.v);
  DeviceTensor o = DeviceTensor::allocate(c.dtype, out.view());
  bool sm90_refused = false, sm80_runs = false;
  for (const auto& [backend, why] : explain_forward(q, k, v, {o.view(), std::nullopt}, in.host_options)) {
    if (backend == Backend::cuda_sm90) sm90_refused = why.has_value() && why->find("head dims") != std::string::npos;
    if (backend == Backend::cuda_sm80) sm80_runs = !why.has_value();
  }
  EXPECT_TRUE(sm90_refused);
  EXPECT_TRUE(sm80_runs);
  Sm80Case automatic = c;  // automatic dispatch still computes it (on cuda_sm80), correctly
  automatic.backend = Backend::automatic;
  check_sm80(automatic);
}

}  // namespace
}  // namespace omniattn::testing
