// Gathers each sequence's keys and values out of the pages (bytes copied, no rounding) and runs the
// attention reference on them: one definition of the semantics for prefill and decode.
#include "decode/decode_reference.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "reference/reference.hpp"

namespace omniattn::detail::reference {
namespace {

// Contiguous [B, max_len, Hkv, dim] copy of one page pool.
std::vector<uint8_t> gather(const CacheGeometry& g, const PagePool& pool, int64_t dim, int64_t max_len) {
  const int64_t es = dtype_size(g.dtype);
  std::vector<uint8_t> out(static_cast<size_t>(std::max<int64_t>(g.batch * max_len * g.hkv * dim, 1) * es), 0);
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t j = 0; j < g.lens[b]; ++j) {
      const int64_t page = g.page_of(b, j), slot = j % g.page_size;
      for (int64_t h = 0; h < g.hkv; ++h) {
        const auto* src = static_cast<const uint8_t*>(pool.data) + (page * pool.page + slot * pool.token + h * pool.head) * es;
        std::memcpy(&out[static_cast<size_t>((((b * max_len + j) * g.hkv) + h) * dim * es)], src,
                    static_cast<size_t>(dim * es));
      }
    }
  return out;
}

}  // namespace

void decode(const DecodeProblem& p, bool lowp) {
  const CacheGeometry& g = p.cache;
  int64_t max_len = 0;
  for (int64_t len : g.lens) max_len = std::max(max_len, len);
  std::vector<uint8_t> k = gather(g, g.k, p.d, max_len), v = gather(g, g.v, p.dv, max_len);

  ForwardProblem f;
  f.dtype = g.dtype;
  f.device = g.device;
  f.batch = p.batch;
  f.hq = p.hq;
  f.hkv = p.hkv;
  f.d = p.d;
  f.dv = p.dv;
  f.q_begin.assign(p.batch, 0);
  f.q_len.assign(p.batch, p.sq);
  f.k_begin.assign(p.batch, 0);
  f.k_len = g.lens;
  f.k_stored = g.lens;
  f.max_q_len = p.sq;
  f.max_k_len = max_len;
  f.total_q = p.batch * p.sq;
  f.q = p.q;
  f.k = {k.data(), max_len * p.hkv * p.d, p.hkv * p.d, p.d};
  f.v = {v.data(), max_len * p.hkv * p.dv, p.hkv * p.dv, p.dv};
  f.scale = p.scale;
  f.softcap = p.softcap;
  f.window_left = p.window_left;
  f.window_right = p.window_right;
  f.sinks = p.sinks;
  f.alibi = p.alibi;
  f.alibi_batch_stride = p.alibi_batch_stride;
  f.sink_logits = p.sink_logits;
  f.out = p.out;
  f.lse = p.lse;
  if (lowp) forward_lowp(f);
  else forward(f);
}

}  // namespace omniattn::detail::reference
