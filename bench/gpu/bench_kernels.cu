#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "bench_kernels.hpp"

namespace omniattn::bench {
namespace {

__device__ uint64_t mix(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <class T>
__device__ T from_float(float x);
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}

template <class T>
__global__ void fill_normal_kernel(T* data, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t r = mix(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i));
    const float u1 = (static_cast<float>(r >> 40) + 1.f) * (1.f / 16777217.f);  // (0, 1]
    const float u2 = static_cast<float>((r >> 16) & 0xffffff) * (1.f / 16777216.f);
    data[i] = from_float<T>(sqrtf(-2.f * logf(u1)) * cospif(2.f * u2));
  }
}

template <class T>
__device__ float load(const void* p, int64_t i) {
  return static_cast<float>(static_cast<const T*>(p)[i]);
}

// One block per sampled row: scores into scratch, block max and sum, then O = P V / sum.
template <class T>
__global__ void naive_rows_kernel(NaiveAttention a) {
  __shared__ float reduce[32];
  const int r = blockIdx.x;
  const int b = a.rows[3 * r], h = a.rows[3 * r + 1], i = a.rows[3 * r + 2];
  const int64_t kvh = h / (a.hq / a.hkv);
  const int64_t q_off = ((int64_t(b) * a.sq + i) * a.hq + h) * a.d;
  float* s = a.scratch + int64_t(r) * a.sk;
  const int64_t last = a.causal ? i + a.sk - a.sq : a.sk - 1;  // last visible key
  auto block_reduce = [&](float x, bool is_max) {
    for (int o = 16; o > 0; o /= 2) {
      const float y = __shfl_xor_sync(0xffffffffu, x, o);
      x = is_max ? fmaxf(x, y) : x + y;
    }
    if (threadIdx.x % 32 == 0) reduce[threadIdx.x / 32] = x;
    __syncthreads();
    x = threadIdx.x < blockDim.x / 32 ? reduce[threadIdx.x] : (is_max ? -INFINITY : 0.f);
    if (threadIdx.x < 32)
      for (int o = 16; o > 0; o /= 2) {
        const float y = __shfl_xor_sync(0xffffffffu, x, o);
        x = is_max ? fmaxf(x, y) : x + y;
      }
    if (threadIdx.x == 0) reduce[0] = x;
    __syncthreads();
    const float result = reduce[0];
    __syncthreads();
    return result;
  };
  float local_max = -INFINITY;
  for (int64_t j = threadIdx.x; j < a.sk; j += blockDim.x) {
    float dot = 0.f;
    const int64_t k_off = ((int64_t(b) * a.sk + j) * a.hkv + kvh) * a.d;
    for (int64_t c = 0; c < a.d; ++c) dot += load<T>(a.q, q_off + c) * load<T>(a.k, k_off + c);
    s[j] = j <= last ? dot * a.scale : -INFINITY;
    local_max = fmaxf(local_max, s[j]);
  }
  const float row_max = block_reduce(local_max, true);
  float local_sum = 0.f;
  for (int64_t j = threadIdx.x; j < a.sk; j += blockDim.x) {
    s[j] = row_max == -INFINITY ? 0.f : expf(s[j] - row_max);
    local_sum += s[j];
  }
  const float sum = block_reduce(local_sum, false);
  for (int64_t c = threadIdx.x; c < a.dv; c += blockDim.x) {
    float acc = 0.f;
    for (int64_t j = 0; j < a.sk; ++j) acc += s[j] * load<T>(a.v, ((int64_t(b) * a.sk + j) * a.hkv + kvh) * a.dv + c);
    a.out[int64_t(r) * a.dv + c] = sum > 0.f ? acc / sum : 0.f;
  }
}

// Each thread xors its 16-byte words (grid-stride, 4 independent loads in flight per iteration); one word per block
// could be written so the loads stay live.
__global__ void read_kernel(const uint4* data, int64_t n, uint32_t* sink) {
  uint32_t acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 w[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) w[u] = __ldcs(data + i + u * stride);  // streaming: read once
#pragma unroll
    for (int u = 0; u < 4; ++u) acc ^= w[u].x + w[u].y + w[u].z + w[u].w;
  }
  for (; i < n; i += stride) {
    const uint4 w = __ldcs(data + i);
    acc ^= w.x + w.y + w.z + w.w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // practically never taken, but not provably dead
}

__global__ void empty_kernel() {}

}  // namespace

void launch_empty(cudaStream_t stream) { empty_kernel<<<1, 32, 0, stream>>>(); }

double measure_read_bandwidth(size_t bytes, int reps) {
  void* data = nullptr;
  uint32_t* sink = nullptr;
  if (cudaMalloc(&data, bytes) != cudaSuccess || cudaMalloc(&sink, 4096 * sizeof(uint32_t)) != cudaSuccess) return 0;
  fill_normal(data, DType::bf16, static_cast<int64_t>(bytes / 2), 1);
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int64_t words = static_cast<int64_t>(bytes / 16);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  float best_ms[64] = {};
  reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
  read_kernel<<<sms * 8, 512>>>(static_cast<const uint4*>(data), words, sink);  // warm-up
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(start);
    read_kernel<<<sms * 8, 512>>>(static_cast<const uint4*>(data), words, sink);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    cudaEventElapsedTime(&best_ms[r], start, stop);
  }
  const bool ok = cudaGetLastError() == cudaSuccess;
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(data);
  cudaFree(sink);
  if (!ok) return 0;
  float* mid = best_ms + reps / 2;
  std::nth_element(best_ms, mid, best_ms + reps);
  return static_cast<double>(bytes) / (*mid * 1e-3);
}

void fill_normal(void* data, DType dtype, int64_t n, uint64_t seed, cudaStream_t stream) {
  const int blocks = 1024, threads = 256;
  if (dtype == DType::bf16)
    fill_normal_kernel<<<blocks, threads, 0, stream>>>(static_cast<__nv_bfloat16*>(data), n, seed);
  else
    fill_normal_kernel<<<blocks, threads, 0, stream>>>(static_cast<__half*>(data), n, seed);
}

void naive_attention_rows(const NaiveAttention& a, cudaStream_t stream) {
  if (a.n_rows == 0) return;
  if (a.dtype == DType::bf16)
    naive_rows_kernel<__nv_bfloat16><<<a.n_rows, 256, 0, stream>>>(a);
  else
    naive_rows_kernel<__half><<<a.n_rows, 256, 0, stream>>>(a);
}

}  // namespace omniattn::bench
