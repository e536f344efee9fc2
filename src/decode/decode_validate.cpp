// Validation of attention_decode's arguments and their normalization into a DecodeProblem.
#include <fmt/format.h>

#include <cmath>

#include "core/validate.hpp"
#include "decode/decode_problem.hpp"

namespace omniattn::detail {

DecodeProblem make_decode_problem(const TensorView& q, const KVCache& cache, const DecodeOutputs& outputs,
                                  const AttentionOptions& o, const DecodeConfig& config) {
  DecodeProblem p;
  p.cache = make_cache_geometry(cache, 0, o.cuda_stream);
  const CacheGeometry& g = p.cache;
  require_defined(q, "q");
  OMNI_REQUIRE(q.ndim == 4, "q", "4 dimensions ([B, Sq, Hq, D])", shape_string(q));
  require_dtype(q, "q", g.dtype);
  require_device(q, "q", g.device);
  require_inner_contiguous(q, "q");
  require_addressable(q, "q");
  OMNI_REQUIRE(q.shape[0] == g.batch, "q", fmt::format("batch {} (the cache's seq_lens)", g.batch), shape_string(q));
  OMNI_REQUIRE(q.shape[1] >= 1 && q.shape[1] <= 16, "q", "1 to 16 query tokens per sequence (Sq)", shape_string(q));
  OMNI_REQUIRE(q.shape[3] == g.d, "q", fmt::format("head dim {} (the cache's)", g.d), shape_string(q));
  OMNI_REQUIRE(q.shape[2] >= 1 && q.shape[2] % g.hkv == 0, "q",
          fmt::format("a number of heads that is a multiple of the cache's {} KV heads", g.hkv), shape_string(q));
  p.batch = g.batch;
  p.sq = q.shape[1];
  p.hq = q.shape[2];
  p.hkv = g.hkv;
  p.d = g.d;
  p.dv = g.dv;
  p.requested = o.backend;
  p.config = config;
  OMNI_REQUIRE(config.num_splits >= 0, "config.num_splits", ">= 0 (0 = automatic)", std::to_string(config.num_splits));
  OMNI_REQUIRE(config.num_ctas >= 0, "config.num_ctas", ">= 0 (0 = automatic)", std::to_string(config.num_ctas));
  OMNI_REQUIRE(o.backend != Backend::cuda_sm90, "options.backend", "automatic, reference, cpu or cuda_sm80 (decode)",
          to_string(o.backend));

  // Options that mean nothing here.
  OMNI_REQUIRE(!o.cu_seqlens_q && !o.cu_seqlens_k, "options.cu_seqlens_q", "none (the cache's seq_lens give lengths)",
          "cu_seqlens");
  OMNI_REQUIRE(!o.seqused_k, "options.seqused_k", "none (the cache's seq_lens give lengths)", "a tensor");

  // Semantics, exactly as attention_forward reads them.
  static_cast<ScoreSemantics&>(p) = read_score_semantics(o, p.d, p.batch, p.hq, g.device);
  p.stream = o.cuda_stream;

  // Outputs: O like q with Dv, LSE f32 [B, Hq, Sq]; both disjoint from everything else of the call.
  const TensorView& out = outputs.out;
  require_defined(out, "outputs.out");
  require_shape(out, "outputs.out", {p.batch, p.sq, p.hq, p.dv});
  require_dtype(out, "outputs.out", g.dtype);
  require_device(out, "outputs.out", g.device);
  require_inner_contiguous(out, "outputs.out");
  require_addressable(out, "outputs.out");
  const TensorView k_view = cache.k, v_view = cache.v;
  for (auto [t, name] : {std::pair{&q, "q"}, {&k_view, "cache.k"}, {&v_view, "cache.v"}})
    require_disjoint(out, "outputs.out", *t, name);
  require_disjoint(out, "outputs.out", cache.seq_lens, "cache.seq_lens");
  if (cache.block_table) require_disjoint(out, "outputs.out", *cache.block_table, "cache.block_table");
  p.q = {q.data, q.stride[0], q.stride[1], q.stride[2]};
  p.out = {out.data, out.stride[0], out.stride[1], out.stride[2]};
  if (outputs.lse) {
    const TensorView& l = *outputs.lse;
    require_defined(l, "outputs.lse");
    require_dtype(l, "outputs.lse", DType::f32);
    require_device(l, "outputs.lse", g.device);
    require_shape(l, "outputs.lse", {p.batch, p.hq, p.sq});
    require_addressable(l, "outputs.lse");
    for (auto [t, name] : {std::pair{&q, "q"}, {&k_view, "cache.k"}, {&v_view, "cache.v"}, {&out, "outputs.out"}})
      require_disjoint(l, "outputs.lse", *t, name);
    require_disjoint(l, "outputs.lse", cache.seq_lens, "cache.seq_lens");
    if (cache.block_table) require_disjoint(l, "outputs.lse", *cache.block_table, "cache.block_table");
    p.lse = RowOperand{l.ptr<float>(), l.stride[0], l.stride[1], l.stride[2]};
  }
  return p;
}

}  // namespace omniattn::detail
