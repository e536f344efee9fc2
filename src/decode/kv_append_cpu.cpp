// kv_cache_append on the CPU: token t of sequence b goes to position seq_lens[b] + t of its pages, K (and the
// optional Q) rotated at that position first.
#include <type_traits>
#include <vector>

#include "core/dtype.hpp"
#include "decode/decode_cpu.hpp"
#include "decode/rotary.hpp"

namespace omniattn::detail::cpu_decode {
namespace {

template <class T>
void copy_row(T* dst, const T* src, int64_t n) {
  for (int64_t c = 0; c < n; ++c) dst[c] = src[c];
}

template <class T>
double load(T x) {
  if constexpr (std::is_same_v<T, double>) return x;
  else return to_float(x);
}
template <class T>
T store(double x) {
  if constexpr (std::is_same_v<T, double>) return x;
  else return from_float<T>(static_cast<float>(x));
}

// Rotates one head vector (dim D, rotary dims first) at `position`, in double, into dst (which may be src).
template <class T>
void rotate_row(const AppendProblem& p, T* dst, const T* src, int64_t position) {
  std::vector<double> x(static_cast<size_t>(p.cache.d));
  for (int64_t c = 0; c < p.cache.d; ++c) x[c] = load(src[c]);
  const float* cos = p.cos + position * p.cos_row;
  const float* sin = p.sin + position * p.sin_row;
  for (int64_t i = 0; i < p.rotary_dim / 2; ++i) {
    const RotaryPair pair = rotary_pair(i, p.rotary_dim, p.interleaved);
    const double x0 = x[pair.first], x1 = x[pair.second];
    x[pair.first] = x0 * cos[i] - x1 * sin[i];
    x[pair.second] = x0 * sin[i] + x1 * cos[i];
  }
  for (int64_t c = 0; c < p.cache.d; ++c) dst[c] = store<T>(x[c]);
}

template <class T>
void append_typed(const AppendProblem& p) {
  const CacheGeometry& g = p.cache;
  const int64_t rows = g.batch * p.sn;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t b = row / p.sn, t = row % p.sn, position = g.lens[b] + t;
    const int64_t page = g.page_of(b, position), slot = position % g.page_size;
    for (int64_t h = 0; h < g.hkv; ++h) {
      T* k = static_cast<T*>(g.k.data) + page * g.k.page + slot * g.k.token + h * g.k.head;
      T* v = static_cast<T*>(g.v.data) + page * g.v.page + slot * g.v.token + h * g.v.head;
      const T* k_src = p.k_new.at<const T>(b, t, h);
      if (p.rotary_dim > 0) rotate_row(p, k, k_src, position);
      else copy_row(k, k_src, g.d);
      copy_row(v, p.v_new.at<const T>(b, t, h), g.dv);
    }
    if (p.q.data != nullptr)
      for (int64_t h = 0; h < p.hq; ++h) {
        T* q = p.q.at<T>(b, t, h);
        rotate_row(p, q, q, position);
      }
  }
}

}  // namespace

void append(const AppendProblem& p) {
  switch (p.cache.dtype) {
    case DType::f64: append_typed<double>(p); break;
    case DType::f32: append_typed<float>(p); break;
    case DType::f16: append_typed<f16_t>(p); break;
    case DType::bf16: append_typed<bf16_t>(p); break;
    default: break;
  }
  if (p.advance_lengths)
    for (int64_t b = 0; b < p.cache.batch; ++b) p.cache.seq_lens[b] += static_cast<int32_t>(p.sn);
}

}  // namespace omniattn::detail::cpu_decode
