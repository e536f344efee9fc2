// Graph attention on CUDA tensors (src/cuda/graph) against the float64 reference with the graph as a dense element
// mask (FlashAttention's tolerance rule; fresh random inputs; outputs NaN-poisoned): odd sizes, empty rows, a hub
// row, GQA 7/1 and 8/2, D 64/128/(192, 128)/256, bf16/f16/f32, softcap, strided layouts, a side stream; a random graph
// of ~1M edges on 100k nodes (sampled rows in float64, timed); bitwise-repeatable backward; errors for bad graphs.
// GraphAttentionGpuSanitize.* is the compute-sanitizer subset.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gpu/gpu_support.hpp"
#include "gpu/graph_emulator/graph_case.hpp"

namespace omniattn::testing {
namespace {

struct DeviceGraphCase {
  DeviceTensor q, k, v, dout, row, col;
  explicit DeviceGraphCase(const GraphCase& c)
      : q(DeviceTensor::upload(c.q)), k(DeviceTensor::upload(c.k)), v(DeviceTensor::upload(c.v)),
        dout(DeviceTensor::upload(c.dout)), row(DeviceTensor::upload(c.graph.row_t)),
        col(DeviceTensor::upload(c.graph.col_t)) {}
};

struct Outputs {
  HostTensor out, lse, dq, dk, dv;
};

// Forward then backward (on the forward's O and LSE) on the GPU; every output poisoned first.
Outputs run_gpu(const GraphCase& c, const DeviceGraphCase& d, cudaStream_t stream = nullptr) {
  const GraphShape& s = c.shape;
  DeviceTensor out = DeviceTensor::allocate(s.dtype, c.out_like().view()),
               lse = DeviceTensor::allocate(DType::f32, c.lse_like().view());
  AttentionOptions o = c.options();
  o.cuda_stream = stream;
  Outputs r;
  EXPECT_NO_THROW(sparse::graph_attention_forward(d.q, d.k, d.v, d.row, d.col, {out.view(), lse.view()}, o));
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  DeviceTensor dq = DeviceTensor::allocate(s.dtype, c.q.view()), dk = DeviceTensor::allocate(s.dtype, c.k.view()),
               dv = DeviceTensor::allocate(s.dtype, c.v.view());
  EXPECT_NO_THROW(sparse::graph_attention_backward(d.q, d.k, d.v, d.row, d.col, out, lse, d.dout,
                                                   {dq.view(), dk.view(), dv.view(), std::nullopt}, o));
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  r.out = out.download(), r.lse = lse.download();
  r.dq = dq.download(), r.dk = dk.download(), r.dv = dv.download();
  return r;
}

void check_case(const GraphShape& s, cudaStream_t stream = nullptr) {
  SCOPED_TRACE(describe(s));
  const GraphCase c(s);
  const DeviceGraphCase d(c);
  const Outputs r = run_gpu(c, d, stream);
  EXPECT_TRUE(c.check_forward(r.out, r.lse));
  EXPECT_TRUE(c.check_backward(r.out, r.lse, r.dq, r.dk, r.dv));
}

GraphShape shape(DType dtype, int64_t nq, int64_t nk, int64_t hq, int64_t hkv, int64_t d, int64_t dv,
                 int64_t max_degree = 12) {
  GraphShape s;
  s.dtype = dtype, s.nq = nq, s.nk = nk, s.hq = hq, s.hkv = hkv, s.d = d, s.dv = dv, s.max_degree = max_degree;
  return s;
}

TEST(GraphAttentionGpu, HeadDimsAndDtypes) {
  OMNI_REQUIRE_GPU();
  for (DType dtype : {DType::bf16, DType::f16})
    for (auto [d, dv] : {std::pair<int64_t, int64_t>{64, 64}, {128, 128}, {192, 128}, {256, 256}})
      check_case(shape(dtype, 239, 113, 4, 2, d, dv));
  check_case(shape(DType::f32, 150, 97, 2, 1, 128, 128));
  check_case(shape(DType::f32, 150, 97, 2, 2, 256, 64));  // two vectors per lane for K
  check_case(shape(DType::bf16, 150, 97, 3, 1, 8, 16));   // lane groups of 2 lanes: 16 edges at once
}

TEST(GraphAttentionGpu, GroupedQueryHeadsAndSoftcap) {
  OMNI_REQUIRE_GPU();
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{7, 1}, {8, 2}, {8, 8}})
    for (double softcap : {0.0, 4.0}) {
      GraphShape s = shape(DType::bf16, 799, 239, hq, hkv, 128, 128, 30);
      s.softcap = softcap;
      check_case(s);
    }
  GraphShape s = shape(DType::f16, 113, 17, 7, 1, 64, 64, 17);
  s.scale = 0.05;
  check_case(s);
}

TEST(GraphAttentionGpu, OddGraphs) {
  OMNI_REQUIRE_GPU();
  check_case(shape(DType::bf16, 1, 1, 2, 1, 64, 64, 1));
  check_case(shape(DType::bf16, 17, 5, 2, 1, 64, 64, 0));  // no edge at all: O = 0, LSE = -inf, gradients 0
  GraphShape hub = shape(DType::bf16, 64, 799, 4, 2, 128, 128, 5);
  hub.hub_row = 9;  // one row of 799 edges next to rows of <= 5
  check_case(hub);
  check_case(shape(DType::bf16, 799, 3, 4, 1, 64, 64, 3));  // each key node seen by ~500 query nodes
}

TEST(GraphAttentionGpu, StridedLayoutsWithoutLseAndASideStream) {
  OMNI_REQUIRE_GPU();
  const GraphShape s = shape(DType::bf16, 150, 97, 4, 2, 64, 64);
  const GraphCase c(s);
  // Token strides padded by 8 elements, heads interleaved the other way for k ([N, H, D] with head stride > token).
  DeviceTensor q = DeviceTensor::upload(c.q, {s.hq * s.d + 8, s.d, 1});
  DeviceTensor k = DeviceTensor::upload(c.k, {s.d, s.nk * s.d + 16, 1});
  DeviceTensor v = DeviceTensor::upload(c.v, {s.hkv * s.dv + 24, s.dv, 1});
  DeviceTensor row = DeviceTensor::upload(c.graph.row_t), col = DeviceTensor::upload(c.graph.col_t);
  DeviceTensor out = DeviceTensor::allocate(s.dtype, c.out_like().view(), {s.hq * s.dv + 8, s.dv, 1});
  DeviceTensor lse = DeviceTensor::allocate(DType::f32, c.lse_like().view());
  cudaStream_t stream = nullptr;
  OMNI_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  AttentionOptions o = c.options();
  o.cuda_stream = stream;
  ASSERT_NO_THROW(sparse::graph_attention_forward(q, k, v, row, col, {out.view(), std::nullopt}, o));
  ASSERT_NO_THROW(sparse::graph_attention_forward(q, k, v, row, col, {out.view(), lse.view()}, o));
  OMNI_CUDA_OK(cudaStreamSynchronize(stream));
  const HostTensor out_h = out.download(), lse_h = lse.download();
  EXPECT_TRUE(c.check_forward(out_h, lse_h));
  DeviceTensor dout = DeviceTensor::upload(c.dout, {s.hq * s.dv + 8, s.dv, 1});
  DeviceTensor dq = DeviceTensor::allocate(s.dtype, c.q.view(), {s.hq * s.d + 16, s.d, 1}),
               dk = DeviceTensor::allocate(s.dtype, c.k.view()), dv = DeviceTensor::allocate(s.dtype, c.v.view());
  ASSERT_NO_THROW(sparse::graph_attention_backward(q, k, v, row, col, out, lse, dout,
                                                   {dq.view(), dk.view(), dv.view(), std::nullopt}, o));
  OMNI_CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_TRUE(c.check_backward(out_h, lse_h, dq.download(), dk.download(), dv.download()));
  OMNI_CUDA_OK(cudaStreamDestroy(stream));
}

TEST(GraphAttentionGpu, BackwardIsBitwiseRepeatable) {
  OMNI_REQUIRE_GPU();
  // Few key nodes, many query nodes: every dK/dV row sums hundreds of (edge, head) pairs.
  const GraphCase c(shape(DType::bf16, 4000, 61, 8, 2, 128, 128, 20));
  const DeviceGraphCase d(c);
  const Outputs a = run_gpu(c, d), b = run_gpu(c, d);
  EXPECT_TRUE(bitwise_equal(a.out, b.out));
  EXPECT_TRUE(bitwise_equal(a.dq, b.dq));
  EXPECT_TRUE(bitwise_equal(a.dk, b.dk));
  EXPECT_TRUE(bitwise_equal(a.dv, b.dv));
}

// Errors name the argument; nothing runs (outputs stay poisoned); the next good call works.
TEST(GraphAttentionGpu, BadGraphsAndArguments) {
  OMNI_REQUIRE_GPU();
  const GraphShape s = shape(DType::bf16, 4, 3, 2, 1, 64, 64);
  const GraphCase c(s);
  const DeviceGraphCase d(c);
  DeviceTensor out = DeviceTensor::allocate(s.dtype, c.out_like().view());
  auto expect = [&](const std::vector<int64_t>& row, const std::vector<int64_t>& col, const std::string& argument,
                    const std::string& given) {
    const DeviceTensor row_d = DeviceTensor::upload(i32_tensor(row)), col_d = DeviceTensor::upload(i32_tensor(col));
    try {
      sparse::graph_attention_forward(d.q, d.k, d.v, row_d, col_d, {out.view(), std::nullopt});
      ADD_FAILURE() << "no error; expected one about " << argument;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
      EXPECT_NE(std::string(e.what()).find(given), std::string::npos) << e.what();
    }
  };
  expect({0, 1, 2, 3}, {0, 1, 2}, "row_offsets", "4");                       // Nq + 1 = 5 entries needed
  expect({0, 1, 2, 3, 4}, {0, 1, 2}, "row_offsets", "0 and 4");              // last entry != edge count
  expect({0, 2, 1, 3, 3}, {0, 1, 2}, "row_offsets", "row 1");                // decreasing
  expect({0, 1, 2, 3, 3}, {0, 1, 3}, "col_indices", "3 in row 2");           // key 3 out of range
  expect({0, 2, 2, 3, 3}, {1, 1, 2}, "col_indices", "1 after 1 in row 0");   // duplicate key
  expect({0, 1, 2, 3, 3}, {0, -1, 2}, "col_indices", "-1 in row 1");         // negative key
  EXPECT_TRUE(std::isnan(out.download().get(0)));
  // Misaligned rows, a dtype without a kernel, a host graph with device tensors.
  TensorView q_off = d.q.view();
  q_off.data = static_cast<char*>(q_off.data) + 2;
  q_off.shape[0] -= 1;
  const DeviceTensor out_small = DeviceTensor::allocate(s.dtype, HostTensor(s.dtype, {3, 2, 64}).view());
  const DeviceTensor no_row = DeviceTensor::upload(i32_tensor({0, 0, 0, 0})), no_col = DeviceTensor::upload(i32_tensor({}));
  try {
    sparse::graph_attention_forward(q_off, d.k, d.v, no_row, no_col, {out_small.view(), std::nullopt});
    ADD_FAILURE() << "misaligned q rows";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "q") << e.what();
  }
  const HostTensor q64 = c.q.to(DType::f64);
  const DeviceTensor q64_d = DeviceTensor::upload(q64), k64_d = DeviceTensor::upload(c.k.to(DType::f64)),
                     v64_d = DeviceTensor::upload(c.v.to(DType::f64));
  const DeviceTensor out64 = DeviceTensor::allocate(DType::f64, c.out_like().view());
  try {
    sparse::graph_attention_forward(q64_d, k64_d, v64_d, d.row, d.col, {out64.view(), std::nullopt});
    ADD_FAILURE() << "f64 on CUDA";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "q") << e.what();
  }
  try {
    sparse::graph_attention_forward(d.q, d.k, d.v, c.graph.row_t, c.graph.col_t, {out.view(), std::nullopt});
    ADD_FAILURE() << "a host graph with CUDA tensors";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "row_offsets") << e.what();
  }
  // Still healthy.
  const Outputs r = run_gpu(c, d);
  EXPECT_TRUE(c.check_forward(r.out, r.lse));
}

// float64 O of (node i, head h) and the LSE, by hand from the CSR.
void reference_row(const GraphCase& c, int64_t i, int64_t h, std::vector<double>& o, double& lse) {
  const GraphShape& s = c.shape;
  const double scale = s.scale.value_or(1.0 / std::sqrt(double(s.d)));
  const int64_t kvh = h / (s.hq / s.hkv), begin = c.graph.row[i], end = c.graph.row[i + 1];
  std::vector<double> logit;
  double top = -INFINITY;
  for (int64_t e = begin; e < end; ++e) {
    double dot = 0;
    for (int64_t x = 0; x < s.d; ++x)
      dot += c.q.get((i * s.hq + h) * s.d + x) * c.k.get((c.graph.col[e] * s.hkv + kvh) * s.d + x);
    logit.push_back(dot * scale);
    top = std::max(top, dot * scale);
  }
  double sum = 0;
  for (double l : logit) sum += std::exp(l - top);
  o.assign(static_cast<size_t>(s.dv), 0.0);
  for (int64_t e = begin; e < end; ++e)
    for (int64_t x = 0; x < s.dv; ++x)
      o[x] += std::exp(logit[e - begin] - top) / sum * c.v.get((c.graph.col[e] * s.hkv + kvh) * s.dv + x);
  lse = end > begin ? top + std::log(sum) : -INFINITY;
}

// |ours - ref| within two roundings of the output dtype at |ref| + 0.3 (f32 accumulation adds far less).
::testing::AssertionResult close(double ours, double ref, DType dtype, const char* what, int64_t at) {
  // One ulp of the output dtype at |ref| + 0.3 (the output's own rounding, with room for the accumulation to flip
  // it) plus an accumulation term. Not the rounding error of one sample point: that can be ~0 by chance (a first
  // GPU run failed with 1.046875 vs 1.04382, a bf16 rounding, against a 0.0029 tolerance).
  const int mantissa = dtype == DType::f32 ? 23 : dtype == DType::f16 ? 10 : 7;
  const double x = std::abs(ref) + 0.3;
  const double tol = std::ldexp(1.0, std::ilogb(x) - mantissa) + std::ldexp(x, dtype == DType::f32 ? -20 : -9);
  if (std::abs(ours - ref) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << "[" << at << "]: " << ours << " vs f64 " << ref << " (tol " << tol
                                       << ")";
}

double median_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Sampled float64 checks of a large case: O and LSE of `rows`, dQ of `rows`, dV of `keys` (all heads), computed from
// the CSR by hand with the GPU's LSE and O (as its backward uses them). No softcap; the default scale.
void check_sampled(const GraphCase& c, const HostTensor& out, const HostTensor& lse, const HostTensor& dq,
                   const HostTensor& dv, const std::vector<int64_t>& rows, const std::vector<int64_t>& keys) {
  const GraphShape& s = c.shape;
  const int64_t group = s.hq / s.hkv;
  const double scale = 1.0 / std::sqrt(double(s.d));
  auto prob = [&](int64_t i, int64_t h, int64_t j) {
    double dot = 0;
    for (int64_t x = 0; x < s.d; ++x)
      dot += c.q.get((i * s.hq + h) * s.d + x) * c.k.get((j * s.hkv + h / group) * s.d + x);
    return std::exp(dot * scale - lse.get(h * s.nq + i));
  };
  auto dout_dot = [&](int64_t i, int64_t h, const HostTensor& t, int64_t row) {  // dO_(i,h) . row `row` of t
    double sum = 0;
    for (int64_t x = 0; x < s.dv; ++x) sum += c.dout.get((i * s.hq + h) * s.dv + x) * t.get(row * s.dv + x);
    return sum;
  };
  std::vector<double> o;
  double ref_lse = 0;
  for (int64_t i : rows)
    for (int64_t h = 0; h < s.hq; ++h) {
      reference_row(c, i, h, o, ref_lse);
      for (int64_t x = 0; x < s.dv; ++x)
        ASSERT_TRUE(close(out.get((i * s.hq + h) * s.dv + x), o[x], s.dtype, "out", i));
      if (std::isinf(ref_lse)) EXPECT_EQ(lse.get(h * s.nq + i), -INFINITY);
      else EXPECT_NEAR(lse.get(h * s.nq + i), ref_lse, 1e-4 * (1 + std::abs(ref_lse)));
      // dQ_i = scale * sum_e P_e (dO_i . v_e - dO_i . O_i) k_e
      const double delta = dout_dot(i, h, out, i * s.hq + h);
      std::vector<double> ref(static_cast<size_t>(s.d), 0.0);
      for (int64_t e = c.graph.row[i]; e < c.graph.row[i + 1]; ++e) {
        const int64_t j = c.graph.col[e];
        const double ds = prob(i, h, j) * (dout_dot(i, h, c.v, j * s.hkv + h / group) - delta) * scale;
        for (int64_t x = 0; x < s.d; ++x) ref[x] += ds * c.k.get((j * s.hkv + h / group) * s.d + x);
      }
      for (int64_t x = 0; x < s.d; ++x) ASSERT_TRUE(close(dq.get((i * s.hq + h) * s.d + x), ref[x], s.dtype, "dq", i));
    }
  // dV_j = sum over edges i -> j and the KV head's query heads of P_ij dO_i.
  for (int64_t j : keys)
    for (int64_t kvh = 0; kvh < s.hkv; ++kvh) {
      std::vector<double> ref(static_cast<size_t>(s.dv), 0.0);
      for (int64_t i = 0; i < s.nq; ++i)
        if (c.graph.edge(i, j))
          for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
            const double p = prob(i, h, j);
            for (int64_t x = 0; x < s.dv; ++x) ref[x] += p * c.dout.get((i * s.hq + h) * s.dv + x);
          }
      for (int64_t x = 0; x < s.dv; ++x)
        ASSERT_TRUE(close(dv.get((j * s.hkv + kvh) * s.dv + x), ref[x], s.dtype, "dv", j));
    }
}

// A large case timed (median of 5 calls after a warm-up, validation included) and checked on sampled rows.
void run_large(const GraphShape& s, const std::vector<int64_t>& rows, const std::vector<int64_t>& keys) {
  const GraphCase c(s);
  const DeviceGraphCase d(c);
  DeviceTensor out = DeviceTensor::allocate(s.dtype, c.out_like().view()),
               lse = DeviceTensor::allocate(DType::f32, c.lse_like().view());
  DeviceTensor dq = DeviceTensor::allocate(s.dtype, c.q.view()), dk = DeviceTensor::allocate(s.dtype, c.k.view()),
               dv = DeviceTensor::allocate(s.dtype, c.v.view());
  auto timed = [](auto&& call) {
    std::vector<double> ms;
    for (int rep = 0; rep < 6; ++rep) {
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const auto t0 = std::chrono::steady_clock::now();
      call();
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      if (rep > 0) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return median_ms(ms);
  };
  const double fwd_ms = timed([&] { sparse::graph_attention_forward(d.q, d.k, d.v, d.row, d.col, {out, lse.view()}); });
  const double bwd_ms = timed([&] {
    sparse::graph_attention_backward(d.q, d.k, d.v, d.row, d.col, out, lse, d.dout, {dq, dk, dv, std::nullopt});
  });
  const double gathered = double(c.graph.nnz()) * s.hkv * (s.d + s.dv) * 2;  // K + V bytes the edges read
  std::printf("[graph] %s: %lld edges; forward %.3f ms (%.0f GB/s of gathered K/V rows), backward %.3f ms\n",
              describe(s).c_str(), static_cast<long long>(c.graph.nnz()), fwd_ms, gathered / fwd_ms / 1e6, bwd_ms);
  const HostTensor out_h = out.download(), lse_h = lse.download(), dq_h = dq.download(), dk_h = dk.download(),
                   dv_h = dv.download();
  for (const HostTensor* t : {&out_h, &lse_h, &dq_h, &dk_h, &dv_h})
    for (int64_t i = 0; i < t->numel(); ++i)
      if (std::isnan(t->get(i))) FAIL() << "an output element was never written (NaN poison) at " << i;
  check_sampled(c, out_h, lse_h, dq_h, dv_h, rows, keys);
}

TEST(GraphAttentionGpu, MillionEdges) {
  OMNI_REQUIRE_GPU();
  // 100k nodes, ~1M edges (degrees 0..23, every 7th node none), bf16, D = 128, 4 query heads on 2 KV heads.
  run_large(shape(DType::bf16, 100000, 100000, 4, 2, 128, 128, 23), {0, 3, 33333, 99999}, {17, 50000});
}

TEST(GraphAttentionGpu, HubsOfAHundredThousand) {
  OMNI_REQUIRE_GPU();
  // Node 0 attends to all 100k key nodes, key node 5 is seen by every query node with an edge (~86k): both split
  // into items of kSplitEntries entries and merged.
  GraphShape s = shape(DType::bf16, 100000, 100000, 4, 2, 128, 128, 9);
  s.hub_row = 0, s.hub_key = 5;
  run_large(s, {0, 1, 77777}, {5, 6});
}

// Small enough for compute-sanitizer (memcheck, racecheck): every kernel of the family once, an error path.
TEST(GraphAttentionGpuSanitize, SmallCases) {
  OMNI_REQUIRE_GPU();
  check_case(shape(DType::bf16, 37, 29, 4, 2, 64, 64));
  check_case(shape(DType::f16, 21, 13, 7, 1, 128, 128));
  check_case(shape(DType::f32, 9, 5, 2, 2, 256, 32, 4));
  const GraphCase c(shape(DType::bf16, 4, 3, 2, 1, 64, 64));
  const DeviceGraphCase d(c);
  DeviceTensor out = DeviceTensor::allocate(DType::bf16, c.out_like().view());
  EXPECT_THROW(sparse::graph_attention_forward(d.q, d.k, d.v, DeviceTensor::upload(i32_tensor({0, 1, 2, 3, 3})),
                                               DeviceTensor::upload(i32_tensor({0, 1, 7})), {out.view(), std::nullopt}),
               Error);
}

}  // namespace
}  // namespace omniattn::testing
