// The CUDA decode kernels run on the CPU under the PTX emulator (src/cuda/common/emulation.hpp), against the float64
// reference on gathered K/V: every schedule, page sizes, head ratios, Sq > 1, options, bad page ids; each case with
// both K/V load modes.
#include <gtest/gtest.h>

#include "gpu/decode_emulator/decode_emulated.hpp"
#include "test_decode_support.hpp"

namespace omniattn::testing {
namespace {

// Runs the case in both load modes (16-byte cp.async chunks, and sm_90 bulk copies on mbarriers).
void run_emulated(const DecodeCase& c, DecodeConfig config, int resident = 6, HostTensor* table = nullptr,
                  bool expect_nan_seq0 = false, int item_lookahead = 1) {
  for (bool bulk : {false, true}) {
    HostTensor out = c.out_like(c.shape.dtype), lse = c.lse_like();
    poison(out);
    poison(lse);
    detail::DecodeProblem p =
        detail::make_decode_problem(c.q, c.host_cache(), {out, lse.view()}, c.host_options(), config);
    if (table) {  // as a CUDA cache without a host copy of its table: only the kernel sees the bad ids
      p.cache.table = table->view().ptr<const int32_t>();
      p.cache.host_table = nullptr;
    }
    const DecodeSchedule used = detail::cuda::emulate_decode(p, resident, item_lookahead, bulk);
    SCOPED_TRACE(::testing::Message() << describe(c.shape, c.features) << " schedule " << int(used)
                                      << (bulk ? " bulk copies" : " cp.async"));
    if (!expect_nan_seq0) {
      EXPECT_TRUE(c.check(out, lse));
      continue;
    }
    // Sequence 0 (KV head 0's rows at least) NaN; the other sequences exact.
    bool any_nan = false;
    const int64_t per_seq = c.shape.sq * c.shape.hq * c.shape.dv;
    for (int64_t i = 0; i < per_seq; ++i) any_nan |= std::isnan(out.get(i));
    EXPECT_TRUE(any_nan) << "a bad page id must show as NaN";
    for (int64_t i = per_seq; i < out.numel(); ++i) ASSERT_FALSE(std::isnan(out.get(i))) << i;
  }
}

DecodeShape shape_of(std::vector<int64_t> lens, int64_t sq, int64_t hq, int64_t hkv, int64_t d, int64_t page) {
  DecodeShape s;
  s.lens = std::move(lens);
  s.sq = sq, s.hq = hq, s.hkv = hkv, s.d = s.dv = d, s.page_size = page;
  return s;
}

TEST(DecodeEmulated, SchedulesAndPageSizes) {
  for (int64_t page : {1, 16, 64, 256, 0})
    for (DecodeSchedule schedule : {DecodeSchedule::no_split, DecodeSchedule::split_kv, DecodeSchedule::stream_k}) {
      DecodeConfig config;
      config.schedule = schedule;
      config.num_splits = schedule == DecodeSchedule::split_kv ? 3 : 0;
      run_emulated(DecodeCase(shape_of({300, 1, 77}, 1, 4, 1, 64, page), DecodeFeatures{}), config);
    }
}

TEST(DecodeEmulated, HeadDimsDtypesAndRowBlocks) {
  for (int64_t d : {64, 128, 256})
    for (DType dtype : {DType::bf16, DType::f16}) {
      DecodeShape s = shape_of({130, 17}, 1, 7, 1, d, 16);
      s.dtype = dtype;
      run_emulated(DecodeCase(s, DecodeFeatures{}), {});
    }
  // 32/8 heads x Sq 5 = 20 rows (4 row warps), 7/1 x 16 = 112 rows (two row blocks of 64).
  run_emulated(DecodeCase(shape_of({90, 200}, 5, 32, 8, 64, 16), DecodeFeatures{}), {});
  run_emulated(DecodeCase(shape_of({150}, 16, 7, 1, 64, 64), DecodeFeatures{}), {});
}

// CTAs that walk many items (stream-K over few CTAs): items of 0, 1 and 2 tiles, shorter than the pipeline's
// look-ahead, between long ones, at every stage count (D = 64: 4 stages, 128: 3, 256: 2) and Sq > 1; with and
// without the copy of an item's tiles before it computes.
TEST(DecodeEmulated, ItemStreams) {
  for (int64_t d : {64, 128, 256})
    for (int ctas : {1, 2, 3, 5}) {
      const int lookahead = ctas == 5 ? 0 : 1;
      DecodeConfig config;
      config.schedule = DecodeSchedule::stream_k;
      config.num_ctas = ctas;
      DecodeFeatures f;
      f.sink_logits = ctas == 3;
      run_emulated(DecodeCase(shape_of({1, 0, 64, 65, 129, 3, 300, 0, 700, 10}, ctas == 2 ? 2 : 1, 4, 2, d, 16), f),
                   config, 6, nullptr, false, lookahead);
    }
}

TEST(DecodeEmulated, Options) {
  std::vector<DecodeFeatures> features(5);
  features[0].window_left = 70, features[0].sinks = 3;  // two key ranges (tiles skipped between them)
  features[1].softcap = 4.0, features[1].alibi = true;
  features[2].sink_logits = true, features[2].causal = false;
  features[3].alibi = features[3].alibi_per_batch = true, features[3].window_left = 10, features[3].window_right = 2,
  features[3].causal = false;
  features[4].scale = -0.2;
  for (const DecodeFeatures& f : features) {
    DecodeConfig config;
    config.schedule = DecodeSchedule::stream_k;
    run_emulated(DecodeCase(shape_of({400, 3, 0}, 3, 4, 2, 64, 16), f), config);
  }
}

TEST(DecodeEmulated, BadPageIdIsNaN) {
  DecodeCase c(shape_of({100, 40}, 1, 4, 1, 64, 16), DecodeFeatures{});
  HostTensor table = c.table;
  table.set(2, 1 << 20);  // sequence 0, page column 2 (keys 32..47)
  for (DecodeSchedule schedule : {DecodeSchedule::no_split, DecodeSchedule::stream_k}) {
    DecodeConfig config;
    config.schedule = schedule;
    run_emulated(c, config, 6, &table, true);
  }
}

}  // namespace
}  // namespace omniattn::testing
