#include "bench_check.hpp"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "bench_cuda.hpp"
#include "bench_kernels.hpp"
#include "core/dtype.hpp"

namespace omniattn::bench {
namespace {

using Buffer = DeviceBuffer<>;

}  // namespace

double sampled_rel_err(const Shape& s, const void* q, const void* k, const void* v, const void* out, int samples) {
  std::mt19937 gen(1234);
  std::vector<int32_t> rows;  // (b, h, i) triples
  if (samples <= 0) {
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.hq; ++h)
        for (int64_t i = 0; i < s.n; ++i) rows.insert(rows.end(), {int32_t(b), int32_t(h), int32_t(i)});
  } else {
    for (int r = 0; r < samples; ++r)
      rows.insert(rows.end(), {int32_t(gen() % s.batch), int32_t(gen() % s.hq), int32_t(gen() % s.n)});
  }
  const int n_rows = int(rows.size() / 3);
  Buffer rows_d(rows.size() * 4), out_d(size_t(n_rows) * s.d * 4), scratch_d(size_t(n_rows) * s.n * 4);
  cuda_ok(cudaMemcpy(rows_d.ptr, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice), "rows upload");
  NaiveAttention a;
  a.q = q, a.k = k, a.v = v, a.dtype = s.dtype;
  a.sq = a.sk = s.n, a.hq = s.hq, a.hkv = s.hkv, a.d = a.dv = s.d;
  a.causal = s.causal;
  a.scale = float(1.0 / std::sqrt(double(s.d)));
  a.rows = static_cast<const int32_t*>(rows_d.ptr), a.n_rows = n_rows;
  a.out = static_cast<float*>(out_d.ptr), a.scratch = static_cast<float*>(scratch_d.ptr);
  naive_attention_rows(a);
  cuda_ok(cudaGetLastError(), "naive attention launch");
  std::vector<float> naive(size_t(n_rows) * s.d);
  cuda_ok(cudaMemcpy(naive.data(), out_d.ptr, naive.size() * 4, cudaMemcpyDeviceToHost), "naive download");
  std::vector<uint16_t> ours_row(s.d);
  double diff2 = 0, ref2 = 0;
  for (int r = 0; r < n_rows; ++r) {
    const int64_t b = rows[3 * r], h = rows[3 * r + 1], i = rows[3 * r + 2];
    const size_t offset = size_t(((b * s.n + i) * s.hq + h) * s.d) * 2;
    cuda_ok(cudaMemcpy(ours_row.data(), static_cast<const char*>(out) + offset, s.d * 2, cudaMemcpyDeviceToHost),
            "output download");
    for (int64_t c = 0; c < s.d; ++c) {
      const double x = s.dtype == DType::bf16 ? detail::to_float(detail::bf16_t{ours_row[c]})
                                              : detail::to_float(detail::f16_t{ours_row[c]});
      const double y = naive[size_t(r) * s.d + c];
      diff2 += (x - y) * (x - y);
      ref2 += y * y;
    }
  }
  return ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
}

}  // namespace omniattn::bench
