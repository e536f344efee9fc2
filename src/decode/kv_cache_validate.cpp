// Validation of KV caches and of kv_cache_append's arguments, and their normalization (decode_problem.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "core/validate.hpp"
#include "decode/decode_cuda.hpp"
#include "decode/decode_problem.hpp"

namespace omniattn::detail {
namespace {

bool is_cache_dtype(DType t) { return t == DType::f64 || t == DType::f32 || t == DType::f16 || t == DType::bf16; }

void check_pool(const TensorView& t, const char* name) {
  require_defined(t, name);
  OMNI_REQUIRE(t.ndim == 4, name, "4 dimensions ([pages, page_size, Hkv, D] or [B, capacity, Hkv, D])", shape_string(t));
  OMNI_REQUIRE(is_cache_dtype(t.dtype), name, "dtype f32, f16 or bf16", to_string(t.dtype));
  require_inner_contiguous(t, name);
  require_addressable(t, name);
}

// Host values of an i32 [n] tensor: the tensor itself on the CPU, else `host` (checked to be a CPU tensor of
// the same shape), else a copy from the device.
std::vector<int32_t> host_values(const TensorView& t, const std::optional<TensorView>& host, const char* name,
                                 const char* host_name, void* stream) {
  if (t.device.is_cpu()) return host_int32(t, name);
  if (host) {
    require_device(*host, host_name, Device::cpu());
    require_shape(*host, host_name, {t.shape[0]});
    return host_int32(*host, host_name);
  }
  require_dtype(t, name, DType::i32);
  require_ndim(t, name, 1);
  OMNI_REQUIRE(t.stride[0] == 1 || t.shape[0] <= 1, name, "a contiguous tensor", fmt::format("stride {}", t.stride[0]));
  std::vector<int32_t> values(static_cast<size_t>(t.shape[0]));
#if OMNIATTN_WITH_CUDA
  if (!values.empty()) decode_cuda::download(values.data(), t.data, t.shape[0] * 4, t.device.index, stream);
#else
  (void)stream;
  OMNI_REQUIRE(false, name, "a CPU tensor (this build has no CUDA)", to_string(t.device));
#endif
  return values;
}

// Whether every id of row[0, n) lies in [0, num_pages): one unsigned compare per id (a negative id wraps past any
// num_pages < 2^31) folded into a flag without a branch, so that the compiler vectorizes it. The early-exit loop
// it replaces cost 0.66 ns per id (345 us per call at B = 64, 128k tokens in pages of 16, on this CPU).
bool page_ids_in_range(const int32_t* row, int64_t n, int64_t num_pages) {
  const uint32_t limit = static_cast<uint32_t>(std::min<int64_t>(num_pages, INT32_MAX));
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= static_cast<uint32_t>(static_cast<uint32_t>(row[i]) >= limit);
  return bad == 0;
}

// Whether every page id that the sequences use lies in [0, num_pages). (Splitting the sequences over OpenMP threads
// past 2^16 ids was measured in session 12 on the H100 host, B = 64, 128k tokens in pages of 16: host time 254-336 us
// against 182-236 us with one thread: the scan is not what the call's host time is made of. Removed.)
bool page_tables_in_range(const CacheGeometry& g, int64_t extra_tokens) {
  for (int64_t b = 0; b < g.batch; ++b) {
    const int64_t used_pages = (g.lens[b] + extra_tokens + g.page_size - 1) / g.page_size;
    if (!page_ids_in_range(g.host_table + b * g.table_batch, used_pages, g.num_pages)) return false;
  }
  return true;
}

}  // namespace

CacheGeometry make_cache_geometry(const KVCache& cache, int64_t extra_tokens, void* stream) {
  CacheGeometry g;
  check_pool(cache.k, "cache.k");
  check_pool(cache.v, "cache.v");
  const TensorView &k = cache.k, &v = cache.v;
  require_dtype(v, "cache.v", k.dtype);
  require_device(v, "cache.v", k.device);
  OMNI_REQUIRE(v.shape[0] == k.shape[0] && v.shape[1] == k.shape[1] && v.shape[2] == k.shape[2], "cache.v",
          fmt::format("the first three sizes of cache.k [{}, {}, {}, *]", k.shape[0], k.shape[1], k.shape[2]),
          shape_string(v));
  OMNI_REQUIRE(k.shape[2] >= 1, "cache.k", "at least one KV head", shape_string(k));
  OMNI_REQUIRE(k.shape[3] >= 1 && k.shape[3] <= 512, "cache.k", "head dim in [1, 512]", shape_string(k));
  OMNI_REQUIRE(v.shape[3] >= 1 && v.shape[3] <= 512, "cache.v", "head dim in [1, 512]", shape_string(v));
  OMNI_REQUIRE(k.shape[1] >= 1, "cache.k", cache.is_paged() ? "page_size >= 1" : "capacity >= 1", shape_string(k));
  g.dtype = k.dtype;
  g.device = k.device;
  g.paged = cache.is_paged();
  g.hkv = k.shape[2];
  g.d = k.shape[3];
  g.dv = v.shape[3];
  g.num_pages = k.shape[0];
  g.page_size = k.shape[1];
  g.k = {k.data, k.stride[0], k.stride[1], k.stride[2]};
  g.v = {v.data, v.stride[0], v.stride[1], v.stride[2]};

  const TensorView& lens = cache.seq_lens;
  require_defined(lens, "cache.seq_lens");
  require_dtype(lens, "cache.seq_lens", DType::i32);
  require_ndim(lens, "cache.seq_lens", 1);
  require_device(lens, "cache.seq_lens", g.device);
  OMNI_REQUIRE(lens.stride[0] == 1 || lens.shape[0] <= 1, "cache.seq_lens", "a contiguous tensor",
          fmt::format("stride {}", lens.stride[0]));
  g.batch = lens.shape[0];
  g.seq_lens = lens.ptr<int32_t>();
  if (cache.host_seq_lens) {
    require_defined(*cache.host_seq_lens, "cache.host_seq_lens");
    OMNI_REQUIRE(g.device.is_cuda(), "cache.host_seq_lens", "only with a CUDA cache (a CPU cache is its own copy)",
            "a host copy of a CPU cache");
    OMNI_REQUIRE(cache.host_seq_lens->stride[0] == 1 || g.batch <= 1, "cache.host_seq_lens", "a contiguous tensor",
            "strided");
    g.host_seq_lens = cache.host_seq_lens->ptr<int32_t>();
  }

  if (g.paged) {
    const TensorView& t = *cache.block_table;
    require_defined(t, "cache.block_table");
    require_dtype(t, "cache.block_table", DType::i32);
    require_device(t, "cache.block_table", g.device);
    OMNI_REQUIRE(t.ndim == 2 && t.shape[0] == g.batch, "cache.block_table",
            fmt::format("shape [{}, max_pages] (B of seq_lens)", g.batch), shape_string(t));
    require_inner_contiguous(t, "cache.block_table");
    require_addressable(t, "cache.block_table");
    g.max_pages = t.shape[1];
    g.table = t.ptr<const int32_t>();
    g.table_batch = t.stride[0];
    if (g.device.is_cpu()) {
      OMNI_REQUIRE(!cache.host_block_table, "cache.host_block_table", "only with a CUDA cache", "a host copy");
      g.host_table = g.table;
    } else if (cache.host_block_table) {
      const TensorView& h = *cache.host_block_table;
      require_defined(h, "cache.host_block_table");
      require_dtype(h, "cache.host_block_table", DType::i32);
      require_device(h, "cache.host_block_table", Device::cpu());
      require_shape(h, "cache.host_block_table", {t.shape[0], t.shape[1]});
      OMNI_REQUIRE(h.stride[0] == t.stride[0] && (h.stride[1] == 1 || t.shape[1] <= 1), "cache.host_block_table",
              fmt::format("the strides of cache.block_table [{}, 1]", t.stride[0]),
              fmt::format("[{}, {}]", h.stride[0], h.stride[1]));
      g.host_table = h.ptr<const int32_t>();
    }
  } else {
    OMNI_REQUIRE(!cache.host_block_table, "cache.host_block_table", "only with a paged cache (block_table set)",
            "a host table for a contiguous cache");
    OMNI_REQUIRE(k.shape[0] == g.batch, "cache.k", fmt::format("batch {} (seq_lens' B) of a contiguous cache", g.batch),
            shape_string(k));
    g.max_pages = 1;
  }

  const std::vector<int32_t> host = host_values(lens, cache.host_seq_lens, "cache.seq_lens", "cache.host_seq_lens",
                                                stream);
  g.lens.assign(host.begin(), host.end());
  const int64_t capacity = g.capacity();
  for (int64_t b = 0; b < g.batch; ++b) {
    const int64_t len = g.lens[b];
    if (!(len >= 0 && len + extra_tokens <= capacity))
      OMNI_REQUIRE(false, "cache.seq_lens",
            extra_tokens > 0 ? fmt::format("entry {} in [0, {}] (capacity {} minus {} appended tokens)", b,
                                           capacity - extra_tokens, capacity, extra_tokens)
                             : fmt::format("entry {} in [0, {}] (the cache's capacity)", b, capacity),
            std::to_string(len));
  }
  if (g.host_table != nullptr && !page_tables_in_range(g, extra_tokens)) {
    for (int64_t b = 0; b < g.batch; ++b) {  // find the first bad entry; its message is formatted only now
      const int64_t used_pages = (g.lens[b] + extra_tokens + g.page_size - 1) / g.page_size;
      const int32_t* row = g.host_table + b * g.table_batch;
      for (int64_t i = 0; i < used_pages; ++i) {
        if (row[i] >= 0 && row[i] < g.num_pages) continue;
        OMNI_REQUIRE(false, cache.host_block_table ? "cache.host_block_table" : "cache.block_table",
                fmt::format("page ids in [0, {}) for the {} pages sequence {} uses", g.num_pages, used_pages, b),
                fmt::format("{} at [{}, {}]", row[i], b, i));
      }
    }
  }
  return g;
}

AppendProblem make_append_problem(const KVCache& cache, const TensorView& k_new, const TensorView& v_new,
                                  const AppendOptions& o) {
  AppendProblem p;
  for (auto [t, name] : {std::pair{&k_new, "k_new"}, {&v_new, "v_new"}}) {
    require_defined(*t, name);
    OMNI_REQUIRE(t->ndim == 4, name, "4 dimensions ([B, Sn, Hkv, D])", shape_string(*t));
    require_inner_contiguous(*t, name);
    require_addressable(*t, name);
  }
  const int64_t sn = k_new.shape[1];
  p.cache = make_cache_geometry(cache, sn, o.cuda_stream);
  const CacheGeometry& g = p.cache;
  require_dtype(k_new, "k_new", g.dtype);
  require_dtype(v_new, "v_new", g.dtype);
  require_device(k_new, "k_new", g.device);
  require_device(v_new, "v_new", g.device);
  require_shape(k_new, "k_new", {g.batch, sn, g.hkv, g.d});
  require_shape(v_new, "v_new", {g.batch, sn, g.hkv, g.dv});
  const TensorView k_view = cache.k, v_view = cache.v;
  for (auto [t, name] : {std::pair{&k_new, "k_new"}, {&v_new, "v_new"}}) {
    require_disjoint(k_view, "cache.k", *t, name);
    require_disjoint(v_view, "cache.v", *t, name);
  }
  require_disjoint(k_view, "cache.k", v_view, "cache.v");
  p.sn = sn;
  p.k_new = {k_new.data, k_new.stride[0], k_new.stride[1], k_new.stride[2]};
  p.v_new = {v_new.data, v_new.stride[0], v_new.stride[1], v_new.stride[2]};
  p.advance_lengths = o.advance_lengths;
  p.stream = o.cuda_stream;
  OMNI_REQUIRE(!o.q || o.rotary, "options.q", "given together with options.rotary", "q without rotary");
  if (o.rotary) {
    const Rotary& r = *o.rotary;
    for (auto [t, name] : {std::pair{&r.cos, "options.rotary.cos"}, {&r.sin, "options.rotary.sin"}}) {
      require_defined(*t, name);
      require_dtype(*t, name, DType::f32);
      require_device(*t, name, g.device);
      OMNI_REQUIRE(t->ndim == 2 && t->shape[1] >= 1, name, "shape [max_positions, rotary_dim / 2]", shape_string(*t));
      require_inner_contiguous(*t, name);
      require_addressable(*t, name);
    }
    require_shape(r.sin, "options.rotary.sin", {r.cos.shape[0], r.cos.shape[1]});
    p.rotary_dim = 2 * r.cos.shape[1];
    OMNI_REQUIRE(p.rotary_dim <= g.d, "options.rotary.cos", fmt::format("rotary_dim = 2 * columns <= D = {}", g.d),
            shape_string(r.cos));
    p.max_positions = r.cos.shape[0];
    int64_t max_pos = 0;
    for (int64_t len : g.lens) max_pos = std::max(max_pos, len + sn);
    OMNI_REQUIRE(max_pos <= p.max_positions, "options.rotary.cos",
            fmt::format("at least {} positions (the longest sequence after the append)", max_pos),
            shape_string(r.cos));
    p.cos = r.cos.ptr<const float>();
    p.sin = r.sin.ptr<const float>();
    p.cos_row = r.cos.stride[0];
    p.sin_row = r.sin.stride[0];
    p.interleaved = r.style == RotaryStyle::interleaved;
    if (o.q) {
      const TensorView& q = *o.q;
      require_defined(q, "options.q");
      OMNI_REQUIRE(q.ndim == 4, "options.q", "4 dimensions ([B, Sn, Hq, D])", shape_string(q));
      require_dtype(q, "options.q", g.dtype);
      require_device(q, "options.q", g.device);
      OMNI_REQUIRE(q.shape[0] == g.batch && q.shape[1] == sn && q.shape[2] >= 1 && q.shape[3] == g.d, "options.q",
              fmt::format("shape [{}, {}, Hq, {}]", g.batch, sn, g.d), shape_string(q));
      require_inner_contiguous(q, "options.q");
      require_addressable(q, "options.q");
      for (auto [t, name] : {std::pair{&k_view, "cache.k"}, {&v_view, "cache.v"}, {&k_new, "k_new"},
                             {&v_new, "v_new"}})
        require_disjoint(q, "options.q", *t, name);
      p.q = {q.data, q.stride[0], q.stride[1], q.stride[2]};
      p.hq = q.shape[2];
    }
  }
  return p;
}

}  // namespace omniattn::detail
