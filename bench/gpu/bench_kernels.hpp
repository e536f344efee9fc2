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

/// The device's measured read bandwidth in bytes/s: median of `reps` passes of a streaming read (16-byte loads,
/// a sum the compiler cannot drop) over `bytes` of device memory (several times the L2). The ceiling of
/// memory-bound kernels that read and barely write, such as decode.
double measure_read_bandwidth(size_t bytes, int reps = 10);

/// Launches an empty kernel (one CTA of 32 threads): the launch cost alone, for host-overhead profiles.
void launch_empty(cudaStream_t stream = nullptr);

}  // namespace omniattn::bench
