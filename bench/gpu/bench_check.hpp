#pragma once
// Accuracy of a benchmarked forward output: sampled rows against the naive f32 GPU kernel of bench_kernels.cu.
#include <cstdint>

#include "omniattn/tensor.hpp"

namespace omniattn::bench {

/// Contiguous [B, N, H, D] problem of the benchmark (D = Dv, Sq = Sk = N).
struct Shape {
  DType dtype = DType::bf16;
  int64_t batch = 1, n = 0, hq = 0, hkv = 0, d = 0;
  bool causal = false;
};

/// rel_err = ||ours - naive|| / ||naive|| over `samples` random (b, h, i) output rows (every row when
/// samples <= 0). q, k, v, out are device pointers of `s`'s shapes.
double sampled_rel_err(const Shape& s, const void* q, const void* k, const void* v, const void* out, int samples);

}  // namespace omniattn::bench
