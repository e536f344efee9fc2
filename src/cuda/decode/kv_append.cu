// kv_cache_append on CUDA: one CTA per new token (b, t) writes its K (rotated when asked) and V rows for every
// KV head into page block_table[b, (seq_lens[b] + t) / page_size]; the optional Q rows are rotated in place.
// Positions come from the device seq_lens (the host copy was only used to validate). A page id out of
// [0, num_pages) (possible only when no host copy of the table was given) skips the token's writes: nothing is
// written out of bounds, and the decode of that sequence then reports the bad id as NaN.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"
#include "decode/decode_cuda.hpp"
#include "decode/rotary.hpp"

namespace omniattn::detail::decode_cuda {
namespace {

__device__ __forceinline__ float load(float x) { return x; }
__device__ __forceinline__ float load(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float load(__half x) { return __half2float(x); }
template <class T> __device__ __forceinline__ T store(float x);
template <> __device__ __forceinline__ float store<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half store<__half>(float x) { return __float2half_rn(x); }

struct AppendParams {
  void* k = nullptr;
  void* v = nullptr;
  int64_t k_page = 0, k_token = 0, k_head = 0, v_page = 0, v_token = 0, v_head = 0;
  const void* k_new = nullptr;
  const void* v_new = nullptr;
  int64_t kn_batch = 0, kn_token = 0, kn_head = 0, vn_batch = 0, vn_token = 0, vn_head = 0;
  void* q = nullptr;  // optional, rotated in place
  int64_t q_batch = 0, q_token = 0, q_head = 0;
  const int32_t* table = nullptr;  // null: contiguous
  int64_t table_batch = 0;
  const int32_t* lens = nullptr;
  int32_t num_pages = 0, page_size = 1, sn = 1, hkv = 1, hq = 0, d = 0, dv = 0;
  const float* cos = nullptr;
  const float* sin = nullptr;
  int64_t cos_row = 0, sin_row = 0;
  int32_t rotary_dim = 0;
  bool interleaved = false;
};

template <class T>
__global__ void append_kernel(const AppendParams p) {
  const int b = static_cast<int>(blockIdx.x) / p.sn, t = static_cast<int>(blockIdx.x) % p.sn;
  const int64_t position = static_cast<int64_t>(p.lens[b]) + t;
  int64_t page = b, slot = position;
  if (p.table != nullptr) {
    page = p.table[b * p.table_batch + position / p.page_size];
    slot = position % p.page_size;
    if (page < 0 || page >= p.num_pages) return;  // never write through a bad id
  }
  const int half = p.rotary_dim / 2;
  const float* cos = p.cos + position * p.cos_row;
  const float* sin = p.sin + position * p.sin_row;
  // K: rotary pairs (one thread per pair: reads and writes its two dims), then the dims past rotary_dim.
  for (int e = threadIdx.x; e < p.hkv * half; e += blockDim.x) {
    const int h = e / half, i = e % half;
    const RotaryPair pair = rotary_pair(i, p.rotary_dim, p.interleaved);
    const T* src = static_cast<const T*>(p.k_new) + b * p.kn_batch + t * p.kn_token + h * p.kn_head;
    T* dst = static_cast<T*>(p.k) + page * p.k_page + slot * p.k_token + h * p.k_head;
    const Rotated y = rotate(load(src[pair.first]), load(src[pair.second]), cos[i], sin[i]);
    dst[pair.first] = store<T>(y.y0);
    dst[pair.second] = store<T>(y.y1);
  }
  const int rest = p.d - p.rotary_dim;
  for (int e = threadIdx.x; e < p.hkv * rest; e += blockDim.x) {
    const int h = e / rest, c = p.rotary_dim + e % rest;
    static_cast<T*>(p.k)[page * p.k_page + slot * p.k_token + h * p.k_head + c] =
        static_cast<const T*>(p.k_new)[b * p.kn_batch + t * p.kn_token + h * p.kn_head + c];
  }
  for (int e = threadIdx.x; e < p.hkv * p.dv; e += blockDim.x) {
    const int h = e / p.dv, c = e % p.dv;
    static_cast<T*>(p.v)[page * p.v_page + slot * p.v_token + h * p.v_head + c] =
        static_cast<const T*>(p.v_new)[b * p.vn_batch + t * p.vn_token + h * p.vn_head + c];
  }
  if (p.q == nullptr) return;
  for (int e = threadIdx.x; e < p.hq * half; e += blockDim.x) {
    const int h = e / half, i = e % half;
    const RotaryPair pair = rotary_pair(i, p.rotary_dim, p.interleaved);
    T* x = static_cast<T*>(p.q) + b * p.q_batch + t * p.q_token + h * p.q_head;
    const Rotated y = rotate(load(x[pair.first]), load(x[pair.second]), cos[i], sin[i]);
    x[pair.first] = store<T>(y.y0);
    x[pair.second] = store<T>(y.y1);
  }
}

__global__ void add_kernel(int32_t* lens, int64_t n, int32_t delta) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) lens[i] += delta;
}

}  // namespace

void add_to_lengths(int32_t* lens, int64_t n, int32_t delta, int device_index, void* stream) {
  if (n == 0) return;
  cuda::DeviceGuard guard(device_index);
  add_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(lens, n, delta);
  cuda::check_launch("decode: cache length update");
}

std::optional<std::string> append_refusal(const AppendProblem& p) {
  const CacheGeometry& g = p.cache;
  if (cuda::device_major(g.device.index) < 8)
    return "needs a CUDA device of compute capability 8.0 or newer (" + to_string(g.device) + " is not)";
  if (g.dtype != DType::bf16 && g.dtype != DType::f16 && g.dtype != DType::f32)
    return "supports f32, bf16 and f16 caches (given " + to_string(g.dtype) + ")";
  if (g.num_pages > INT32_MAX) return std::string("supports fewer than 2^31 pages");
  return std::nullopt;
}

void append(const AppendProblem& p) {
  const CacheGeometry& g = p.cache;
  cuda::DeviceGuard guard(g.device.index);
  const auto stream = static_cast<cudaStream_t>(p.stream);
  AppendParams a;
  a.k = g.k.data, a.v = g.v.data;
  a.k_page = g.k.page, a.k_token = g.k.token, a.k_head = g.k.head;
  a.v_page = g.v.page, a.v_token = g.v.token, a.v_head = g.v.head;
  a.k_new = p.k_new.data, a.v_new = p.v_new.data;
  a.kn_batch = p.k_new.batch, a.kn_token = p.k_new.token, a.kn_head = p.k_new.head;
  a.vn_batch = p.v_new.batch, a.vn_token = p.v_new.token, a.vn_head = p.v_new.head;
  a.q = p.q.data;
  a.q_batch = p.q.batch, a.q_token = p.q.token, a.q_head = p.q.head;
  a.table = g.paged ? g.table : nullptr;
  a.table_batch = g.table_batch;
  a.lens = g.seq_lens;
  a.num_pages = static_cast<int32_t>(g.num_pages);
  a.page_size = static_cast<int32_t>(g.page_size);
  a.sn = static_cast<int32_t>(p.sn);
  a.hkv = static_cast<int32_t>(g.hkv);
  a.hq = static_cast<int32_t>(p.hq);
  a.d = static_cast<int32_t>(g.d);
  a.dv = static_cast<int32_t>(g.dv);
  a.cos = p.cos, a.sin = p.sin, a.cos_row = p.cos_row, a.sin_row = p.sin_row;
  a.rotary_dim = static_cast<int32_t>(p.rotary_dim);
  a.interleaved = p.interleaved;
  const int64_t blocks = g.batch * p.sn;
  if (blocks > 0) {
    const auto grid = static_cast<unsigned>(blocks);
    switch (g.dtype) {
      case DType::f32: append_kernel<float><<<grid, 128, 0, stream>>>(a); break;
      case DType::f16: append_kernel<__half><<<grid, 128, 0, stream>>>(a); break;
      default: append_kernel<__nv_bfloat16><<<grid, 128, 0, stream>>>(a); break;
    }
    cuda::check_launch("decode: kv_cache_append");
  }
  if (p.advance_lengths && p.sn > 0) {
    add_to_lengths(g.seq_lens, g.batch, static_cast<int32_t>(p.sn), g.device.index, p.stream);
    if (g.host_seq_lens != nullptr)
      for (int64_t b = 0; b < g.batch; ++b) g.host_seq_lens[b] += static_cast<int32_t>(p.sn);
  }
}

}  // namespace omniattn::detail::decode_cuda
