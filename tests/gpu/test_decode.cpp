// attention_decode and kv_cache_append on CUDA against the float64 reference on gathered K/V: every page size,
// every schedule, ragged batches (1 ... 128k keys), head ratios 7/1 and 32/8, Sq 1..16, every option, both dtypes,
// head dims 64/128/256, poisoned outputs, bad block tables (Error with a host copy, NaN without), streams.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "gpu/gpu_support.hpp"
#include "test_decode_support.hpp"

namespace omniattn::testing {
namespace {

// Device copies of a case's tensors.
struct DeviceCase {
  DeviceTensor q, k, v, table, lens, alibi, sinks, out, lse;
  explicit DeviceCase(const DecodeCase& c, bool head_major = false)
      : q(DeviceTensor::upload(c.q)),
        k(DeviceTensor::upload(c.k, head_major ? c.head_major_strides(c.shape.d) : std::vector<int64_t>{})),
        v(DeviceTensor::upload(c.v, head_major ? c.head_major_strides(c.shape.dv) : std::vector<int64_t>{})),
        table(c.shape.page_size > 0 ? DeviceTensor::upload(c.table) : DeviceTensor{}),
        lens(DeviceTensor::upload(c.lens)),
        alibi(c.features.alibi ? DeviceTensor::upload(c.alibi) : DeviceTensor{}),
        sinks(c.features.sink_logits ? DeviceTensor::upload(c.sinks) : DeviceTensor{}),
        out(DeviceTensor::allocate(c.shape.dtype, c.out_like(c.shape.dtype).view())),
        lse(DeviceTensor::allocate(DType::f32, c.lse_like().view())) {}
};

struct RunFlags {
  DecodeConfig config;
  bool host_table = true, host_lens = true;
  bool head_major = false;  // K/V pools head-major (HND) instead of token-major (NHD)
  cudaStream_t stream = nullptr;
};

// Runs the CUDA path on a case (outputs NaN-poisoned by allocate) and checks it.
void run_gpu(const DecodeCase& c, const RunFlags& f = {}) {
  DeviceCase d(c, f.head_major);
  KVCache cache = c.cache(d.k, d.v, d.table, d.lens);
  if (f.host_table && c.shape.page_size > 0) cache.host_block_table = c.table.view();
  if (f.host_lens) cache.host_seq_lens = c.lens.view();
  AttentionOptions o = c.options(&d.alibi.view(), &d.sinks.view());
  o.backend = Backend::cuda_sm80;
  o.cuda_stream = f.stream;
  ASSERT_NO_THROW(attention_decode(d.q, cache, {d.out.view(), d.lse.view()}, o, f.config))
      << describe(c.shape, c.features);
  if (f.stream) OMNI_CUDA_OK(cudaStreamSynchronize(f.stream));
  OMNI_CUDA_OK(cudaDeviceSynchronize());
  EXPECT_TRUE(c.check(d.out.download(), d.lse.download())) << "schedule " << int(f.config.schedule);
}

DecodeShape shape_of(std::vector<int64_t> lens, int64_t sq, int64_t hq, int64_t hkv, int64_t d, int64_t page,
                     DType dtype = DType::bf16) {
  DecodeShape s;
  s.dtype = dtype;
  s.lens = std::move(lens);
  s.sq = sq, s.hq = hq, s.hkv = hkv, s.d = s.dv = d, s.page_size = page;
  return s;
}

TEST(DecodeGpu, EveryPageSizeAndSchedule) {
  OMNI_REQUIRE_GPU();
  for (int64_t page : {1, 16, 64, 256, 0}) {
    const DecodeCase c(shape_of({1, 239, 1000, 4097}, 1, 32, 8, 128, page), DecodeFeatures{});
    for (DecodeSchedule schedule : {DecodeSchedule::automatic, DecodeSchedule::no_split, DecodeSchedule::split_kv,
                                    DecodeSchedule::stream_k}) {
      RunFlags f;
      f.config.schedule = schedule;
      run_gpu(c, f);
    }
  }
}

// Head-major pools (the layout of FlashInfer's HND caches and of a [B, Hkv, L, D] tensor): the kernel reads K/V
// rows through the pool's strides, so only the strides change.
TEST(DecodeGpu, HeadMajorPages) {
  OMNI_REQUIRE_GPU();
  for (int64_t page : {1, 16, 256, 0}) {
    const DecodeCase c(shape_of({1, 239, 1000, 4097}, 2, 32, 8, 128, page), DecodeFeatures{});
    for (DecodeSchedule schedule : {DecodeSchedule::automatic, DecodeSchedule::stream_k}) {
      RunFlags f;
      f.config.schedule = schedule;
      f.head_major = true;
      run_gpu(c, f);
    }
  }
}

TEST(DecodeGpu, RaggedBatchUpTo128k) {
  OMNI_REQUIRE_GPU();
  const DecodeCase c(shape_of({131072, 1, 17, 1024, 113, 0, 5000}, 1, 8, 1, 128, 16), DecodeFeatures{});
  run_gpu(c);
  RunFlags f;
  f.config.schedule = DecodeSchedule::stream_k;
  f.config.num_ctas = 37;  // an odd grid: runs end mid-segment everywhere
  run_gpu(c, f);
}

TEST(DecodeGpu, HeadRatiosAndQueryTokens) {
  OMNI_REQUIRE_GPU();
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{7, 1}, {32, 8}, {4, 4}})
    for (int64_t sq : {1, 2, 5, 16})
      run_gpu(DecodeCase(shape_of({799, 33, 3}, sq, hq, hkv, 128, 16), DecodeFeatures{}));
}

TEST(DecodeGpu, HeadDimsAndDtypes) {
  OMNI_REQUIRE_GPU();
  for (int64_t d : {64, 128, 256})
    for (DType dtype : {DType::bf16, DType::f16})
      for (int64_t sq : {1, 4}) run_gpu(DecodeCase(shape_of({513, 2000}, sq, 8, 2, d, 64, dtype), DecodeFeatures{}));
}

TEST(DecodeGpu, EveryOption) {
  OMNI_REQUIRE_GPU();
  std::vector<DecodeFeatures> features(8);
  features[0].window_left = 300;
  features[1].window_left = 200, features[1].sinks = 4;  // two key ranges
  features[2].softcap = 5.0;
  features[3].alibi = true;
  features[4].alibi = features[4].alibi_per_batch = true;
  features[5].sink_logits = true;
  features[6].causal = false, features[6].window_left = 30, features[6].window_right = 2;
  features[7].softcap = 3.0, features[7].alibi = true, features[7].sink_logits = true, features[7].window_left = 100,
  features[7].sinks = 2, features[7].scale = 0.2;
  for (const DecodeFeatures& f : features)
    for (DecodeSchedule schedule : {DecodeSchedule::no_split, DecodeSchedule::stream_k}) {
      RunFlags flags;
      flags.config.schedule = schedule;
      run_gpu(DecodeCase(shape_of({2000, 7, 1}, 3, 8, 2, 128, 16), f), flags);
    }
}

TEST(DecodeGpu, NoHostCopiesAndAStream) {
  OMNI_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  OMNI_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  RunFlags f;
  f.host_table = f.host_lens = false;
  f.stream = stream;
  run_gpu(DecodeCase(shape_of({3000, 1, 64}, 2, 16, 2, 128, 256), DecodeFeatures{}), f);
  OMNI_CUDA_OK(cudaStreamDestroy(stream));
}

TEST(DecodeGpu, BadBlockTable) {
  OMNI_REQUIRE_GPU();
  const DecodeCase c(shape_of({100, 40}, 1, 4, 1, 128, 16), DecodeFeatures{});
  HostTensor bad = c.table;
  bad.set(2, 1 << 20);  // sequence 0, page column 2
  DeviceCase d(c);
  DeviceTensor bad_table = DeviceTensor::upload(bad);
  KVCache cache = c.cache(d.k, d.v, bad_table, d.lens);
  AttentionOptions o;
  o.causal = true;
  // With a host copy: an Error before anything runs.
  cache.host_block_table = bad.view();
  try {
    attention_decode(d.q, cache, {d.out.view(), d.lse.view()}, o);
    ADD_FAILURE() << "no Error for a bad page id";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "cache.host_block_table");
  }
  // Without: the kernel never reads through the id and writes NaN for the sequence's rows.
  cache.host_block_table.reset();
  for (DecodeSchedule schedule : {DecodeSchedule::no_split, DecodeSchedule::stream_k}) {
    DecodeConfig config;
    config.schedule = schedule;
    d.out.poison();
    ASSERT_NO_THROW(attention_decode(d.q, cache, {d.out.view(), d.lse.view()}, o, config));
    OMNI_CUDA_OK(cudaDeviceSynchronize());
    const HostTensor out = d.out.download();
    const int64_t per_seq = 4 * 128;
    for (int64_t i = 0; i < per_seq; ++i) ASSERT_TRUE(std::isnan(out.get(i))) << i;
    for (int64_t i = per_seq; i < out.numel(); ++i) ASSERT_FALSE(std::isnan(out.get(i))) << i;
  }
}

// Sets an environment switch for the scope (the decode backend reads OMNIATTN_DECODE_BULK per call).
struct ScopedEnv {
  const char* name;
  ScopedEnv(const char* n, const char* value) : name(n) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name); }
};

// One K/V load mode (OMNIATTN_DECODE_BULK: "1" bulk row copies on per-stage mbarriers, the default on sm_90; "0"
// 16-byte cp.async chunks, what other GPUs run): page sizes 1 ... 256 and contiguous, every schedule, a ragged batch
// with an odd stream-K grid, Sq 5 x 7/1 heads (64-row CTAs), D 64 / 256, and a bad page id (NaN rows, the other
// sequences exact).
void check_load_mode(const char* bulk_switch) {
  const ScopedEnv bulk("OMNIATTN_DECODE_BULK", bulk_switch);
  for (int64_t page : {1, 16, 256, 0}) {
    const DecodeCase c(shape_of({1, 239, 1000, 4097}, 1, 32, 8, 128, page), DecodeFeatures{});
    for (DecodeSchedule schedule : {DecodeSchedule::no_split, DecodeSchedule::split_kv, DecodeSchedule::stream_k}) {
      RunFlags f;
      f.config.schedule = schedule;
      run_gpu(c, f);
    }
  }
  RunFlags odd;
  odd.config.schedule = DecodeSchedule::stream_k;
  odd.config.num_ctas = 37;
  run_gpu(DecodeCase(shape_of({131072, 1, 17, 1024, 113, 0, 5000}, 1, 8, 1, 128, 16), DecodeFeatures{}), odd);
  run_gpu(DecodeCase(shape_of({799, 33, 3}, 5, 7, 1, 128, 16), DecodeFeatures{}));
  for (int64_t d : {64, 256}) run_gpu(DecodeCase(shape_of({513, 2000}, 2, 8, 2, d, 64, DType::f16), DecodeFeatures{}));
  DecodeFeatures window;
  window.window_left = 200, window.sinks = 4, window.sink_logits = true;
  run_gpu(DecodeCase(shape_of({2000, 7, 1}, 3, 8, 2, 128, 16), window), odd);

  const DecodeCase c(shape_of({100, 40}, 1, 4, 1, 128, 16), DecodeFeatures{});
  HostTensor bad = c.table;
  bad.set(2, 1 << 20);
  DeviceCase d(c);
  DeviceTensor bad_table = DeviceTensor::upload(bad);
  KVCache cache = c.cache(d.k, d.v, bad_table, d.lens);
  AttentionOptions o;
  o.causal = true;
  ASSERT_NO_THROW(attention_decode(d.q, cache, {d.out.view(), d.lse.view()}, o));
  OMNI_CUDA_OK(cudaDeviceSynchronize());
  const HostTensor out = d.out.download();
  for (int64_t i = 0; i < 4 * 128; ++i) ASSERT_TRUE(std::isnan(out.get(i))) << i;
  for (int64_t i = 4 * 128; i < out.numel(); ++i) ASSERT_FALSE(std::isnan(out.get(i))) << i;
}

TEST(DecodeGpu, BulkCopies) {
  OMNI_REQUIRE_GPU();
  check_load_mode("1");
}

TEST(DecodeGpu, ChunkCopies) {
  OMNI_REQUIRE_GPU();
  check_load_mode("0");
}

// Small enough for compute-sanitizer (scripts/gpu_check*.sh run *Sanitize* under memcheck and racecheck).
TEST(DecodeGpu, SanitizeSmall) {
  OMNI_REQUIRE_GPU();
  RunFlags f;
  f.config.schedule = DecodeSchedule::stream_k;
  run_gpu(DecodeCase(shape_of({300, 5, 1}, 2, 8, 2, 128, 16), DecodeFeatures{}), f);
  f.config.schedule = DecodeSchedule::no_split;
  run_gpu(DecodeCase(shape_of({70}, 16, 8, 1, 64, 1), DecodeFeatures{}), f);
  const ScopedEnv chunks("OMNIATTN_DECODE_BULK", "0");
  f.config.schedule = DecodeSchedule::stream_k;
  run_gpu(DecodeCase(shape_of({300, 5, 1}, 2, 8, 2, 128, 16), DecodeFeatures{}), f);
}

// Largest |a - b| / (|b| + 1e-3) over elements, NaN equal to NaN (the pools' unused slots), NaN vs number: inf.
double max_rel_diff(const HostTensor& a, const HostTensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get(i), y = b.get(i);
    if (std::isnan(x) && std::isnan(y)) continue;
    if (std::isnan(x) || std::isnan(y)) return INFINITY;
    m = std::max(m, std::abs(x - y) / (std::abs(y) + 1e-3));
  }
  return m;
}

TEST(DecodeGpu, AppendMatchesTheCpuAppend) {
  OMNI_REQUIRE_GPU();
  for (bool rotary : {false, true})
    for (bool interleaved : {false, true}) {
      DecodeShape s = shape_of({30, 0, 17}, 1, 8, 2, 64, 16);
      s.spare_columns = 2;
      s.spare_pages = 12;
      DecodeCase c(s, DecodeFeatures{});
      size_t next = 0;  // the columns the 3 new tokens need get spare pages
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t col = (s.lens[b] + 15) / 16; col < (s.lens[b] + 3 + 15) / 16; ++col)
          c.table.set(b * c.max_pages + col, static_cast<double>(c.spare_ids.at(next++)));
      HostTensor k_new = random_normal(s.dtype, {3, 3, 2, 64}), v_new = random_normal(s.dtype, {3, 3, 2, 64});
      HostTensor q = random_normal(s.dtype, {3, 3, 8, 64});
      HostTensor cos(DType::f32, {64, 24}), sin(DType::f32, {64, 24});  // rotary_dim 48 < D
      fill_normal(cos);
      fill_normal(sin);
      DeviceCase d(c);
      DeviceTensor dk = DeviceTensor::upload(k_new), dv = DeviceTensor::upload(v_new), dq = DeviceTensor::upload(q);
      DeviceTensor dcos = DeviceTensor::upload(cos), dsin = DeviceTensor::upload(sin);
      AppendOptions host_o, dev_o;
      if (rotary) {
        const RotaryStyle style = interleaved ? RotaryStyle::interleaved : RotaryStyle::half_split;
        host_o.rotary = Rotary{cos, sin, style};
        host_o.q = q.view();
        dev_o.rotary = Rotary{dcos.view(), dsin.view(), style};
        dev_o.q = dq.view();
      }
      HostTensor host_lens_copy = c.lens;
      KVCache dev_cache = c.cache(d.k, d.v, d.table, d.lens);
      dev_cache.host_seq_lens = host_lens_copy.view();
      ASSERT_NO_THROW(kv_cache_append(dev_cache, dk, dv, dev_o));
      kv_cache_append(c.host_cache(), k_new, v_new, host_o);
      OMNI_CUDA_OK(cudaDeviceSynchronize());
      // The CPU rotates in double, the GPU in float: equal up to one bf16 rounding (2^-7 relative at worst).
      const double one_rounding = 1.0 / 128;
      EXPECT_LE(max_rel_diff(d.k.download(), c.k), rotary ? one_rounding : 0.0);
      EXPECT_EQ(max_rel_diff(d.v.download(), c.v), 0.0);
      EXPECT_EQ(max_rel_diff(d.lens.download(), c.lens), 0.0);
      EXPECT_EQ(max_rel_diff(host_lens_copy, c.lens), 0.0);
      if (rotary) EXPECT_LE(max_rel_diff(dq.download(), q), one_rounding);
    }
}

}  // namespace
}  // namespace omniattn::testing
