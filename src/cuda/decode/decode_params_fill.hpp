#pragma once
// DecodeProblem -> DecodeParams (everything but the plan's device addresses). Host-only and free of CUDA calls, so
// that the launch (decode_backend.cu) and the host emulation of the kernel fill the parameters the same way.
#include "cuda/decode/decode_params.hpp"
#include "decode/decode_problem.hpp"

namespace omniattn::detail::cuda {

/// Packed query rows per CTA: 16 when all query heads of a KV head x Sq tokens fit (4 warps split the keys),
/// else 64 (one warp per 16 rows).
inline int decode_row_warps(const DecodeProblem& p) { return p.group() * p.sq <= 16 ? 1 : 4; }

inline DecodeParams make_decode_params(const DecodeProblem& p) {
  const CacheGeometry& g = p.cache;
  DecodeParams k;
  k.q = p.q.data;
  k.q_batch = p.q.batch, k.q_token = p.q.token, k.q_head = p.q.head;
  k.out = p.out.data;
  k.o_batch = p.out.batch, k.o_token = p.out.token, k.o_head = p.out.head;
  if (p.lse) {
    k.lse = p.lse->data;
    k.lse_batch = p.lse->batch, k.lse_head = p.lse->head, k.lse_token = p.lse->token;
  }
  k.k = g.k.data;
  k.v = g.v.data;
  k.k_page = g.k.page, k.k_token = g.k.token, k.k_head = g.k.head;
  k.v_page = g.v.page, k.v_token = g.v.token, k.v_head = g.v.head;
  k.table = g.paged ? g.table : nullptr;
  k.table_batch = g.table_batch;
  k.num_pages = static_cast<int32_t>(g.num_pages);
  k.page_size = static_cast<int32_t>(g.page_size);
  k.page_shift = -1;
  for (int s = 0; s < 31; ++s)
    if ((int64_t{1} << s) == g.page_size) k.page_shift = s;
  k.sq = static_cast<int32_t>(p.sq);
  k.group = static_cast<int32_t>(p.group());
  k.window_left = p.window_left, k.window_right = p.window_right, k.sinks = p.sinks;
  k.scale = static_cast<float>(p.scale);
  k.softcap = static_cast<float>(p.softcap);
  k.general_logits = p.softcap > 0 || p.alibi != nullptr || p.scale < 0;
  k.mult_log2 = static_cast<float>((k.general_logits ? 1.0 : p.scale) * 1.4426950408889634);
  k.alibi = p.alibi;
  k.alibi_batch_stride = p.alibi_batch_stride;
  k.sink_logits = p.sink_logits;
  k.rows_per_cta = 16 * decode_row_warps(p);
  k.dv = static_cast<int32_t>(p.dv);
  return k;
}

}  // namespace omniattn::detail::cuda
