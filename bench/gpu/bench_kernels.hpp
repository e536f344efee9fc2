#pragma once
// Helper kernels of the GPU benchmark: random fill and a naive (one block per query row, f32) attention used
// to check sampled rows of the benchmarked outputs.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "omniattn/tensor.hpp"

namespace omniattn::bench {

/// Fills n elements (bf16 or f16) with N(0, 1) values from a counter-based hash of (seed, index).
void fill_normal(void* data, DType dtype, int64_t n, uint64_t seed, cudaStream_t stream = nullptr);

/// Contiguous [B, S, H, D] tensors; row r of `rows` (device, 3 ints: b, h, i) gets its output
/// (Dv floats) in out[r * dv ...]. `scratch` holds n_rows * sk floats.
struct NaiveAttention {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  DType dtype = DType::bf16;
  int64_t sq = 0, sk = 0, hq = 0, hkv = 0, d = 0, dv = 0;
  bool causal = false;  // bottom-right aligned
  float scale = 1.f;
  const int32_t* rows = nullptr;
  int n_rows = 0;
  float* out = nullptr;
  float* scratch = nullptr;
};
void naive_attention_rows(const NaiveAttention& a, cudaStream_t stream = nullptr);

}  // namespace omniattn::bench
