// The CUDA decode path (decode/decode_cuda.hpp): can it run, plan, upload, launch.
#include <cuda_runtime_api.h>

#include <cstring>
#include <string>
#include <vector>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"
#include "cuda/common/env.hpp"
#include "cuda/decode/decode_config.hpp"
#include "cuda/decode/decode_launch.hpp"
#include "cuda/decode/decode_params_fill.hpp"
#include "cuda/decode/decode_workspace.hpp"
#include "decode/decode_cuda.hpp"
#include "decode/decode_plan.hpp"

namespace omniattn::detail::decode_cuda {
namespace {

using cuda::DecodeParams;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Why a tensor's rows are not 16-byte aligned (cp.async and the vector stores need it), or "".
std::string row_alignment(const char* name, const void* data, std::initializer_list<int64_t> strides) {
  if (!aligned16(data)) return std::string(name) + " must start at a 16-byte aligned address";
  for (int64_t s : strides)
    if (s % 8 != 0) return std::string(name) + " needs strides that are multiples of 8 elements (16 bytes)";
  return "";
}

template <class F>
auto with_head_dim(int d, F&& f) {
  switch (d) {
    case 64: return f.template operator()<64>();
    case 128: return f.template operator()<128>();
    default: return f.template operator()<256>();
  }
}

// Multiprocessors of `device`, queried once per process (device_info).
int sm_count(int device) {
  const int n = cuda::device_multiprocessors(device);
  if (n <= 0) throw Error("device", "a CUDA device whose multiprocessor count can be queried", std::to_string(device));
  return n;
}

// Appends `count` elements of T to the staging bytes at a 16-byte aligned offset; returns the offset.
template <class T>
size_t stage(std::vector<uint8_t>& bytes, const T* data, size_t count) {
  const size_t offset = (bytes.size() + 15) / 16 * 16;
  bytes.resize(offset + count * sizeof(T));
  if (count > 0) std::memcpy(bytes.data() + offset, data, count * sizeof(T));
  return offset;
}

}  // namespace

void download(void* host, const void* device, int64_t bytes, int device_index, void* stream) {
  cuda::DeviceGuard guard(device_index);
  const auto s = static_cast<cudaStream_t>(stream);
  cuda::check(cudaMemcpyAsync(host, device, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, s),
              "cudaMemcpyAsync (cache lengths to the host)");
  cuda::check(cudaStreamSynchronize(s), "cudaStreamSynchronize (cache lengths to the host)");
}

std::optional<std::string> refusal(const DecodeProblem& p) {
  const CacheGeometry& g = p.cache;
  if (!g.device.is_cuda()) return std::string("runs on CUDA caches only");
  if (cuda::device_major(g.device.index) < 8)
    return "needs a CUDA device of compute capability 8.0 or newer (" + to_string(g.device) + " is not)";
  if (g.dtype != DType::bf16 && g.dtype != DType::f16)
    return "supports bf16 and f16 caches only (given " + to_string(g.dtype) + ")";
  if (p.d != p.dv || cuda::decode_tuning(static_cast<int>(p.d)).d == 0)
    return "supports D = Dv in {64, 128, 256} (given D = " + std::to_string(p.d) + ", Dv = " + std::to_string(p.dv) +
           ")";
  for (const std::string& why :
       {row_alignment("q", p.q.data, {p.q.batch, p.q.token, p.q.head}),
        row_alignment("outputs.out", p.out.data, {p.out.batch, p.out.token, p.out.head}),
        row_alignment("cache.k", g.k.data, {g.k.page, g.k.token, g.k.head}),
        row_alignment("cache.v", g.v.data, {g.v.page, g.v.token, g.v.head})})
    if (!why.empty()) return why;
  if (g.num_pages > INT32_MAX || g.page_size > INT32_MAX)
    return std::string("supports fewer than 2^31 pages and tokens per page");
  return std::nullopt;
}

void run(const DecodeProblem& p) {
  if (auto why = refusal(p)) throw Error("options.backend", "a decode call that cuda_sm80 supports", *why);
  const CacheGeometry& g = p.cache;
  cuda::DeviceGuard guard(g.device.index);
  const auto stream = static_cast<cudaStream_t>(p.stream);
  const int d = static_cast<int>(p.d);
  const int row_warps = cuda::decode_row_warps(p);
  const cuda::DecodeTuning tuning = cuda::decode_tuning(d);
  const int ctas_per_sm =
      with_head_dim(d, [&]<int kD>() { return cuda::decode_ctas_per_sm<kD>(g.dtype, row_warps); });

  DecodePlanShape shape;
  shape.block_n = tuning.block_n;
  shape.rows_per_cta = 16 * row_warps;
  shape.resident_ctas = sm_count(g.device.index) * ctas_per_sm;
  shape.min_tiles_per_cta = cuda::kDecodeMinTilesPerCta;
  const DecodePlan plan = plan_decode(decode_segments(p, shape.block_n, shape.rows_per_cta), p.config, shape);

  // One upload: segments | items | cta_items | merges, then room for the partials.
  std::vector<uint8_t> meta;
  const size_t seg_at = stage(meta, plan.segments.data(), plan.segments.size());
  const size_t item_at = stage(meta, plan.items.data(), plan.items.size());
  const size_t cta_at = stage(meta, plan.cta_items.data(), plan.cta_items.size());
  const size_t merge_at = stage(meta, plan.merges.data(), plan.merges.size());
  const size_t slots = static_cast<size_t>(plan.num_partials) * static_cast<size_t>(shape.rows_per_cta);
  const size_t partial_o_at = (meta.size() + 15) / 16 * 16;
  const size_t partial_lse_at = partial_o_at + slots * static_cast<size_t>(p.dv) * sizeof(float);
  const size_t total = partial_lse_at + slots * sizeof(float);

  DecodeParams k = cuda::make_decode_params(p);
  // OMNIATTN_DECODE_ITEM_LOOKAHEAD=0: no copy of an item's tiles before it computes (the A/B of the tile stream).
  static const int item_lookahead = cuda::env_int("OMNIATTN_DECODE_ITEM_LOOKAHEAD", 1) > 0 ? 1 : 0;
  k.item_lookahead = item_lookahead;
  // K/V rows as bulk copies on sm_90 (docs/decode.md step 11: B = 16, 64k 8% and paged 16 22% faster than 16-byte
  // cp.async chunks on an H100). OMNIATTN_DECODE_BULK=0 selects the chunks (read per call: the GPU tests switch it).
  // Hopper only: newer GPUs run the sm_80 build of this kernel, whose bulk path traps.
  k.bulk_kv = cuda::device_major(g.device.index) == 9 && cuda::env_int("OMNIATTN_DECODE_BULK", 1) > 0;

  cuda::DecodeWorkspace& workspace = cuda::DecodeWorkspace::of_device(g.device.index);
  const auto lock = workspace.lock();  // held until the kernels that read the plan are enqueued
  auto* base = static_cast<uint8_t*>(workspace.acquire(total, stream));
  workspace.upload(0, meta.data(), meta.size(), stream);
  k.segments = reinterpret_cast<const DecodeSegment*>(base + seg_at);
  k.items = reinterpret_cast<const DecodeItem*>(base + item_at);
  k.cta_items = reinterpret_cast<const int32_t*>(base + cta_at);
  k.merges = reinterpret_cast<const DecodeMerge*>(base + merge_at);
  k.partial_o = reinterpret_cast<float*>(base + partial_o_at);
  k.partial_lse = reinterpret_cast<float*>(base + partial_lse_at);
  if (!plan.merges.empty()) k.merge_counters = workspace.merge_counters(plan.merges.size(), stream);
  with_head_dim(d, [&]<int kD>() { cuda::launch_decode<kD>(g.dtype, row_warps, k, plan.grid(), stream); });
}

}  // namespace omniattn::detail::decode_cuda
