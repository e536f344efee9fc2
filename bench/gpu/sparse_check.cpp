#include "sparse_check.hpp"

#include <cuda_runtime_api.h>

#include <cmath>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench_cuda.hpp"
#include "core/dtype.hpp"

namespace omniattn::bench {
namespace {

float bf16(uint16_t bits) { return detail::to_float(detail::bf16_t{bits}); }

// Head `h` of sequence b of a [B, N, H, D] bf16 tensor as floats [N, D] (one strided copy).
std::vector<float> head_slice(const void* base, int64_t b, int64_t h, int64_t n, int64_t heads, int64_t d) {
  std::vector<uint16_t> raw(size_t(n * d));
  const char* src = static_cast<const char*>(base) + ((b * n) * heads + h) * d * 2;
  cuda_throw(cudaMemcpy2D(raw.data(), size_t(d) * 2, src, size_t(heads * d) * 2, size_t(d) * 2, size_t(n),
                       cudaMemcpyDeviceToHost),
          "K/V head copy (check)");
  std::vector<float> out(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) out[i] = bf16(raw[i]);
  return out;
}

std::vector<float> row(const void* base, int64_t b, int64_t i, int64_t h, int64_t n, int64_t heads, int64_t d) {
  std::vector<uint16_t> raw(static_cast<size_t>(d));
  const char* src = static_cast<const char*>(base) + ((b * n + i) * heads + h) * d * 2;
  cuda_throw(cudaMemcpy(raw.data(), src, size_t(d) * 2, cudaMemcpyDeviceToHost), "row copy (check)");
  std::vector<float> out(raw.size());
  for (size_t c = 0; c < raw.size(); ++c) out[c] = bf16(raw[c]);
  return out;
}

}  // namespace

double sparse_rel_err(const CheckTensors& t, const VisibleFn& visible, int samples) {
  std::mt19937 gen(4321);
  // Two query heads (so the K/V copies stay small); rows spread over the sequence, the last one included.
  const int64_t heads[2] = {int64_t(gen() % t.hq), int64_t(gen() % t.hq)};
  std::map<std::pair<int64_t, int64_t>, std::pair<std::vector<float>, std::vector<float>>> kv;  // (b, kv head)
  const double scale = 1.0 / std::sqrt(double(t.d));
  double diff2 = 0, ref2 = 0;
  std::vector<double> s(size_t(t.n));
  for (int r = 0; r < samples; ++r) {
    const int64_t b = int64_t(gen() % t.batch), h = heads[r % 2];
    const int64_t i = r == samples - 1 ? t.n - 1 : int64_t(gen() % t.n);
    const int64_t kvh = h / (t.hq / t.hkv);
    auto& [k, v] = kv[{b, kvh}];
    if (k.empty()) k = head_slice(t.k, b, kvh, t.n, t.hkv, t.d), v = head_slice(t.v, b, kvh, t.n, t.hkv, t.d);
    const auto q = row(t.q, b, i, h, t.n, t.hq, t.d), ours = row(t.out, b, i, h, t.n, t.hq, t.d);
    double row_max = -INFINITY;
    for (int64_t j = 0; j < t.n; ++j) {
      s[size_t(j)] = -INFINITY;
      if (!visible(h, i, j)) continue;
      double dot = 0;
      for (int64_t c = 0; c < t.d; ++c) dot += double(q[size_t(c)]) * double(k[size_t(j * t.d + c)]);
      s[size_t(j)] = dot * scale;
      row_max = std::max(row_max, s[size_t(j)]);
    }
    std::vector<double> ref(size_t(t.d), 0.0);
    double sum = 0;
    if (row_max > -INFINITY)
      for (int64_t j = 0; j < t.n; ++j) {
        if (s[size_t(j)] == -INFINITY) continue;
        const double p = std::exp(s[size_t(j)] - row_max);
        sum += p;
        for (int64_t c = 0; c < t.d; ++c) ref[size_t(c)] += p * double(v[size_t(j * t.d + c)]);
      }
    for (int64_t c = 0; c < t.d; ++c) {
      const double y = sum > 0 ? ref[size_t(c)] / sum : 0.0;
      diff2 += (double(ours[size_t(c)]) - y) * (double(ours[size_t(c)]) - y);
      ref2 += y * y;
    }
  }
  return ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
}

}  // namespace omniattn::bench
