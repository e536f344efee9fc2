// attention_decode on the CPU against the float64 reference on gathered K/V: page sizes, ragged batches, odd
// head ratios, 1..16 query tokens, every score option, forced key splits; and the argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_decode_support.hpp"

namespace omniattn::testing {
namespace {

// Runs the CPU path on a case (outputs poisoned first) and checks it against the oracle.
void run_cpu(const DecodeCase& c, DecodeConfig config = {}) {
  HostTensor out = c.out_like(c.shape.dtype), lse = c.lse_like();
  poison(out);
  poison(lse);
  AttentionOptions o = c.host_options();
  o.backend = Backend::cpu;
  attention_decode(c.q, c.host_cache(), {out, lse.view()}, o, config);
  EXPECT_TRUE(c.check(out, lse)) << "splits " << config.num_splits;
}

TEST(DecodeCpu, PageSizesAndDtypes) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16})
    for (int64_t page : {1, 16, 64, 256, 0}) {
      DecodeShape s;
      s.dtype = dtype;
      s.lens = {1, 17, 113, 239, 300};
      s.page_size = page;
      s.hq = 4;
      s.hkv = 2;
      s.d = s.dv = 32;
      s.sq = 2;
      run_cpu(DecodeCase(s, DecodeFeatures{}));
    }
}

TEST(DecodeCpu, RaggedBatchWithEmptyAndShortSequences) {
  DecodeShape s;
  s.lens = {0, 1, 3, 799, 16, 2};  // 0 keys; fewer keys than query tokens (rows that see nothing)
  s.sq = 4;
  s.hq = 7;
  s.hkv = 1;
  s.d = s.dv = 48;
  s.page_size = 16;
  for (bool causal : {true, false}) {
    DecodeFeatures f;
    f.causal = causal;
    run_cpu(DecodeCase(s, f));
  }
}

TEST(DecodeCpu, HeadRatiosAndQueryTokens) {
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{7, 1}, {32, 8}, {3, 3}})
    for (int64_t sq : {1, 5, 16}) {
      DecodeShape s;
      s.lens = {113, 40};
      s.sq = sq;
      s.hq = hq;
      s.hkv = hkv;
      s.d = s.dv = 16;
      s.page_size = 16;
      run_cpu(DecodeCase(s, DecodeFeatures{}));
    }
}

TEST(DecodeCpu, EveryScoreOption) {
  DecodeShape s;
  s.dtype = DType::bf16;
  s.lens = {239, 1, 57};
  s.sq = 3;
  s.hq = 4;
  s.hkv = 2;
  s.d = 64;
  s.dv = 32;  // Dv != D on the CPU
  s.page_size = 16;
  std::vector<DecodeFeatures> features(8);
  features[0].window_left = 31;                                   // sliding window
  features[1].window_left = 20, features[1].sinks = 5;            // window + attention sinks (two key ranges)
  features[2].softcap = 5.0;                                      // softcap
  features[3].alibi = true;                                       // ALiBi [Hq]
  features[4].alibi = features[4].alibi_per_batch = true;         // ALiBi [B, Hq]
  features[5].sink_logits = true;                                 // gpt-oss sink logit
  features[6].causal = false, features[6].window_left = 7, features[6].window_right = 1;  // two-sided window
  features[7].softcap = 3.0, features[7].alibi = true, features[7].sink_logits = true, features[7].window_left = 40,
  features[7].sinks = 2, features[7].scale = 0.3;  // all at once
  for (const DecodeFeatures& f : features) {
    SCOPED_TRACE(describe(s, f));
    run_cpu(DecodeCase(s, f));
  }
}

TEST(DecodeCpu, ForcedSplitsAgree) {
  DecodeShape s;
  s.dtype = DType::f32;
  s.lens = {799, 5, 1000};
  s.sq = 2;
  s.hq = 8;
  s.hkv = 2;
  s.d = s.dv = 32;
  s.page_size = 64;
  DecodeFeatures f;
  f.window_left = 300;
  f.sinks = 4;
  f.sink_logits = true;
  const DecodeCase c(s, f);
  for (int splits : {1, 2, 7, 64}) {
    DecodeConfig config;
    config.num_splits = splits;
    config.schedule = DecodeSchedule::split_kv;
    run_cpu(c, config);
  }
}

// Head-major pools (HND): the same case through strided views of permuted copies of its pools.
TEST(DecodeCpu, HeadMajorPages) {
  for (int64_t page : {1, 16, 0}) {
    DecodeShape s;
    s.lens = {1, 130, 301};
    s.sq = 2;
    s.hq = 6;
    s.hkv = 3;
    s.d = s.dv = 32;
    s.page_size = page;
    const DecodeCase c(s, DecodeFeatures{});
    const auto k = c.head_major(c.k, s.d), v = c.head_major(c.v, s.dv);
    HostTensor out = c.out_like(s.dtype), lse = c.lse_like();
    poison(out);
    poison(lse);
    AttentionOptions o = c.host_options();
    o.backend = Backend::cpu;
    attention_decode(c.q, c.cache(k.view, v.view, c.table, c.lens), {out, lse.view()}, o);
    EXPECT_TRUE(c.check(out, lse)) << "page " << page;
  }
}

TEST(DecodeCpu, NoLseAndAutomaticBackend) {
  DecodeShape s;
  s.dtype = DType::f16;
  s.lens = {77};
  s.hq = 2;
  s.hkv = 1;
  s.d = s.dv = 16;
  const DecodeCase c(s, DecodeFeatures{});
  HostTensor out = c.out_like(s.dtype);
  poison(out);
  attention_decode(c.q, c.host_cache(), {out.view(), std::nullopt}, c.host_options());
  EXPECT_TRUE(within_tolerance(out, c.out_naive, c.out64, s.dtype, "out"));
}

// ------------------------------------------------------------------------------------------------------------
// Argument checks: every refusal is an omniattn::Error naming the argument, and writes nothing.

struct Fixture {
  DecodeShape shape;
  DecodeCase c;
  HostTensor out, lse;
  Fixture() : shape(make_shape()), c(shape, DecodeFeatures{}), out(c.out_like(shape.dtype)), lse(c.lse_like()) {
    poison(out);
  }
  static DecodeShape make_shape() {
    DecodeShape s;
    s.lens = {20, 5};
    s.hq = 4;
    s.hkv = 2;
    s.d = s.dv = 16;
    s.page_size = 8;
    return s;
  }
  // Calls attention_decode and returns the argument its Error names ("" when nothing is thrown).
  std::string error_of(const TensorView& q, const KVCache& cache, const AttentionOptions& o,
                       const DecodeOutputs* outputs = nullptr) {
    try {
      attention_decode(q, cache, outputs ? *outputs : DecodeOutputs{out, lse.view()}, o);
    } catch (const Error& e) {
      for (int64_t i = 0; i < out.numel(); ++i)
        if (!std::isnan(out.get(i))) return "wrote outputs before throwing";
      return e.argument();
    }
    return "";
  }
};

TEST(DecodeValidation, BadBlockTableEntries) {
  Fixture f;
  for (int32_t bad : {-1, static_cast<int32_t>(f.c.num_pages), 1 << 30, INT32_MIN, INT32_MAX}) {
    HostTensor table = f.c.table;
    table.set(1, bad);  // sequence 0, page 1: used (20 tokens span 3 pages of 8)
    EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v, table, f.c.lens), f.c.host_options()), "cache.block_table");
  }
  // An out-of-range id in a column the sequence does not use is never read: fine.
  HostTensor table = f.c.table;
  table.set(1 * f.c.max_pages + 1, -7);  // sequence 1 (5 tokens) uses page column 0 only
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v, table, f.c.lens), f.c.host_options()), "");
}

// Tables past 2^16 used ids are checked on several threads (kv_cache_validate.cpp): a bad id in any sequence is
// still found, and the error names the first one.
TEST(DecodeValidation, BadBlockTableEntryInALargeTable) {
  DecodeShape s;
  s.lens = {70000, 3, 40000};
  s.hq = s.hkv = 1;
  s.d = s.dv = 8;
  s.page_size = 1;
  DecodeCase c(s, DecodeFeatures{});
  HostTensor out = c.out_like(s.dtype), lse = c.lse_like();
  for (auto [b, i] : {std::pair<int64_t, int64_t>{2, 39999}, {0, 12345}, {1, 2}}) {
    HostTensor table = c.table;
    table.set(b * c.max_pages + i, -3);
    table.set(2 * c.max_pages + 39998, static_cast<double>(c.num_pages));  // a later bad entry too (sequence 2)
    try {
      attention_decode(c.q, c.cache(c.k, c.v, table, c.lens), {out, lse.view()}, c.host_options());
      ADD_FAILURE() << "no error for a bad id at [" << b << ", " << i << "]";
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), "cache.block_table");
      const std::string first = b == 2 ? "[2, 39998]" : "[" + std::to_string(b) + ", " + std::to_string(i) + "]";
      EXPECT_NE(std::string(e.what()).find(first), std::string::npos) << e.what();
    }
  }
}

TEST(DecodeValidation, BadLengths) {
  Fixture f;
  HostTensor lens = f.c.lens;
  lens.set(0, static_cast<double>(f.c.max_pages * f.c.page_size + 1));  // past the capacity
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v, f.c.table, lens), f.c.host_options()), "cache.seq_lens");
  lens.set(0, -1);
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v, f.c.table, lens), f.c.host_options()), "cache.seq_lens");
  HostTensor short_lens(DType::i32, {1});
  short_lens.set(0, 3);
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v, f.c.table, short_lens), f.c.host_options()), "cache.block_table");
  HostTensor f32_lens = f.c.lens.to(DType::f32);
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v, f.c.table, f32_lens), f.c.host_options()), "cache.seq_lens");
}

TEST(DecodeValidation, BadQueriesAndOutputs) {
  Fixture f;
  const KVCache cache = f.c.host_cache();
  const AttentionOptions o = f.c.host_options();
  HostTensor q17 = random_normal(DType::bf16, {2, 17, 4, 16});
  EXPECT_EQ(f.error_of(q17, cache, o), "q");  // 17 query tokens
  HostTensor q_heads = random_normal(DType::bf16, {2, 1, 3, 16});
  EXPECT_EQ(f.error_of(q_heads, cache, o), "q");  // 3 heads over 2 KV heads
  HostTensor q_dim = random_normal(DType::bf16, {2, 1, 4, 32});
  EXPECT_EQ(f.error_of(q_dim, cache, o), "q");
  EXPECT_EQ(f.error_of(f.c.q.to(DType::f16), cache, o), "q");  // dtype of the cache
  HostTensor wrong_out(DType::bf16, {2, 2, 4, 16});
  poison(wrong_out);
  const DecodeOutputs bad_out{wrong_out, std::nullopt};
  EXPECT_EQ(f.error_of(f.c.q, cache, o, &bad_out), "outputs.out");
  HostTensor wrong_lse(DType::f32, {2, 1, 4});
  const DecodeOutputs bad_lse{f.out, wrong_lse.view()};
  EXPECT_EQ(f.error_of(f.c.q, cache, o, &bad_lse), "outputs.lse");
  const DecodeOutputs aliased{f.out, TensorView::contiguous(f.out.view().data, DType::f32, {2, 4, 1})};
  EXPECT_EQ(f.error_of(f.c.q, cache, o, &aliased), "outputs.lse");
}

TEST(DecodeValidation, OptionsThatDoNotApply) {
  Fixture f;
  const KVCache cache = f.c.host_cache();
  AttentionOptions o = f.c.host_options();
  HostTensor used(DType::i32, {2});
  o.seqused_k = used.view();
  EXPECT_EQ(f.error_of(f.c.q, cache, o), "options.seqused_k");
  o = f.c.host_options();
  o.window_left = -2;
  EXPECT_EQ(f.error_of(f.c.q, cache, o), "options.window_left");
  o = f.c.host_options();
  o.backend = Backend::cuda_sm80;  // a CPU cache
  EXPECT_EQ(f.error_of(f.c.q, cache, o), "options.backend");
  HostTensor slopes(DType::f32, {3});
  o = f.c.host_options();
  o.alibi_slopes = slopes.view();
  EXPECT_EQ(f.error_of(f.c.q, cache, o), "options.alibi_slopes");
}

TEST(DecodeValidation, BadPools) {
  Fixture f;
  const AttentionOptions o = f.c.host_options();
  HostTensor v_heads = random_normal(DType::bf16, {f.c.num_pages, f.c.page_size, 1, 16});
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, v_heads, f.c.table, f.c.lens), o), "cache.v");
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v.to(DType::f16), f.c.table, f.c.lens), o), "cache.v");
  HostTensor table3(DType::i32, {3, f.c.max_pages});
  EXPECT_EQ(f.error_of(f.c.q, f.c.cache(f.c.k, f.c.v, table3, f.c.lens), o), "cache.block_table");
  // A contiguous cache must have one row of K per sequence.
  HostTensor k3 = random_normal(DType::bf16, {3, 32, 2, 16}), v3 = random_normal(DType::bf16, {3, 32, 2, 16});
  EXPECT_EQ(f.error_of(f.c.q, KVCache::contiguous(k3, v3, f.c.lens), o), "cache.k");
}

}  // namespace
}  // namespace omniattn::testing
