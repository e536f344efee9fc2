// The README's example: causal GQA attention on the CPU, forward and backward.
#include <omniattn/omniattn.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  using namespace omniattn;
  const int64_t B = 2, S = 300, Hq = 8, Hkv = 2, D = 64;
  std::mt19937 gen(42);
  std::normal_distribution<float> normal;
  auto randn = [&](size_t n) { std::vector<float> x(n); for (auto& v : x) v = normal(gen); return x; };
  std::vector<float> q = randn(B * S * Hq * D), k = randn(B * S * Hkv * D), v = randn(B * S * Hkv * D);
  std::vector<float> out(B * S * Hq * D), lse(B * Hq * S);

  AttentionOptions options;
  options.causal = true;
  options.window_left = 128;  // sliding window of 128 keys before the diagonal...
  options.sinks = 4;          // ...plus the first 4 keys (StreamingLLM)
  const auto Q = TensorView::contiguous(q.data(), DType::f32, {B, S, Hq, D});
  const auto K = TensorView::contiguous(k.data(), DType::f32, {B, S, Hkv, D});
  const auto V = TensorView::contiguous(v.data(), DType::f32, {B, S, Hkv, D});
  const auto O = TensorView::contiguous(out.data(), DType::f32, {B, S, Hq, D});
  const auto L = TensorView::contiguous(lse.data(), DType::f32, {B, Hq, S});
  attention_forward(Q, K, V, {O, L}, options);

  std::vector<float> dout = randn(out.size()), dq(q.size()), dk(k.size()), dv(v.size());
  attention_backward(Q, K, V, O, L, TensorView::contiguous(dout.data(), DType::f32, {B, S, Hq, D}),
                     {TensorView::contiguous(dq.data(), DType::f32, {B, S, Hq, D}),
                      TensorView::contiguous(dk.data(), DType::f32, {B, S, Hkv, D}),
                      TensorView::contiguous(dv.data(), DType::f32, {B, S, Hkv, D})},
                     options);

  try {  // bad input: a clear error, nothing written
    options.window_left = -7;
    attention_forward(Q, K, V, {O, L}, options);
  } catch (const Error& e) {
    std::printf("refused: %s\n", e.what());
  }
  double checksum = 0;
  for (float x : dq) checksum += std::abs(x);
  std::printf("out[0] = %.6f  lse[0] = %.6f  sum|dq| = %.3f\n", out[0], lse[0], checksum);
  return std::isfinite(checksum) ? 0 : 1;
}
