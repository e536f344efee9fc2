// Validation of the public arguments and their normalization into a Problem.
#include "core/problem.hpp"

#include <fmt/format.h>

#include <cmath>

#include "core/validate.hpp"

namespace omniattn::detail {
namespace {

bool is_float_dtype(DType t) { return t == DType::f64 || t == DType::f32 || t == DType::f16 || t == DType::bf16; }

Operand operand(const TensorView& t, bool varlen) {
  // [B, S, H, D] or varlen [total, H, D].
  if (varlen) return {t.data, 0, t.stride[0], t.stride[1]};
  return {t.data, t.stride[0], t.stride[1], t.stride[2]};
}

void check_qkv(const TensorView& q, const TensorView& k, const TensorView& v, bool varlen) {
  const int nd = varlen ? 3 : 4;
  const char* layout = varlen ? " (varlen [total, H, D])" : " ([B, S, H, D])";
  for (auto [t, name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}}) {
    require_defined(*t, name);
    OMNI_REQUIRE(t->ndim == nd, name, fmt::format("{} dimensions{}", nd, layout), shape_string(*t));
    OMNI_REQUIRE(is_float_dtype(t->dtype), name, "dtype f64, f32, f16 or bf16", to_string(t->dtype));
    require_inner_contiguous(*t, name);
    require_addressable(*t, name);
  }
  require_dtype(k, "k", q.dtype);
  require_dtype(v, "v", q.dtype);
  require_device(k, "k", q.device);
  require_device(v, "v", q.device);
  const int h = nd - 2, dim = nd - 1;
  OMNI_REQUIRE(q.shape[dim] >= 1 && q.shape[dim] <= 512, "q", "head dim in [1, 512]", shape_string(q));
  OMNI_REQUIRE(v.shape[dim] >= 1 && v.shape[dim] <= 512, "v", "head dim in [1, 512]", shape_string(v));
  OMNI_REQUIRE(k.shape[dim] == q.shape[dim], "k", fmt::format("head dim {} (q's)", q.shape[dim]), shape_string(k));
  if (!varlen) {
    OMNI_REQUIRE(k.shape[0] == q.shape[0], "k", fmt::format("batch {} (q's)", q.shape[0]), shape_string(k));
    OMNI_REQUIRE(v.shape[0] == q.shape[0], "v", fmt::format("batch {} (q's)", q.shape[0]), shape_string(v));
  }
  OMNI_REQUIRE(v.shape[nd - 3] == k.shape[nd - 3], "v", fmt::format("{} keys (k's)", k.shape[nd - 3]), shape_string(v));
  OMNI_REQUIRE(k.shape[h] >= 1, "k", "at least one KV head", shape_string(k));
  OMNI_REQUIRE(v.shape[h] == k.shape[h], "v", fmt::format("{} heads (k's)", k.shape[h]), shape_string(v));
  OMNI_REQUIRE(q.shape[h] >= 1 && q.shape[h] % k.shape[h] == 0, "q",
          fmt::format("a number of heads that is a multiple of k's {}", k.shape[h]), shape_string(q));
}

// Fills the per-sequence geometry from shapes or cu_seqlens, and seqused_k.
void fill_sequences(Problem& p, const TensorView& q, const TensorView& k, const AttentionOptions& o) {
  if (p.varlen) {
    OMNI_REQUIRE(o.cu_seqlens_k.has_value(), "options.cu_seqlens_k", "given together with cu_seqlens_q", "none");
    auto cq = host_int32(*o.cu_seqlens_q, "options.cu_seqlens_q", o.cuda_stream);
    auto ck = host_int32(*o.cu_seqlens_k, "options.cu_seqlens_k", o.cuda_stream);
    OMNI_REQUIRE(cq.size() >= 1, "options.cu_seqlens_q", "B+1 >= 1 entries", "0");
    OMNI_REQUIRE(ck.size() == cq.size(), "options.cu_seqlens_k", fmt::format("{} entries (as cu_seqlens_q)", cq.size()),
            std::to_string(ck.size()));
    p.batch = static_cast<int64_t>(cq.size()) - 1;
    for (auto [cu, name, total] : {std::tuple{&cq, "options.cu_seqlens_q", q.shape[0]},
                                   std::tuple{&ck, "options.cu_seqlens_k", k.shape[0]}}) {
      OMNI_REQUIRE((*cu)[0] == 0, name, "first entry 0", std::to_string((*cu)[0]));
      for (size_t i = 1; i < cu->size(); ++i)
        OMNI_REQUIRE((*cu)[i] >= (*cu)[i - 1], name, "non-decreasing offsets",
                fmt::format("{} after {} at index {}", (*cu)[i], (*cu)[i - 1], i));
      OMNI_REQUIRE(cu->back() == total, name, fmt::format("last entry {} (total tokens)", total),
              std::to_string(cu->back()));
    }
    for (int64_t b = 0; b < p.batch; ++b) {
      p.q_begin.push_back(cq[b]);
      p.q_len.push_back(cq[b + 1] - cq[b]);
      p.k_begin.push_back(ck[b]);
      p.k_len.push_back(ck[b + 1] - ck[b]);
    }
  } else {
    OMNI_REQUIRE(!o.cu_seqlens_k.has_value(), "options.cu_seqlens_k", "given together with cu_seqlens_q",
            "cu_seqlens_k alone");
    p.batch = q.shape[0];
    p.q_begin.assign(p.batch, 0);
    p.q_len.assign(p.batch, q.shape[1]);
    p.k_begin.assign(p.batch, 0);
    p.k_len.assign(p.batch, k.shape[1]);
  }
  p.k_stored = p.k_len;
  if (o.seqused_k) {
    require_device(*o.seqused_k, "options.seqused_k", q.device);
    auto used = host_int32(*o.seqused_k, "options.seqused_k", o.cuda_stream);
    OMNI_REQUIRE(static_cast<int64_t>(used.size()) == p.batch, "options.seqused_k", fmt::format("{} entries (B)", p.batch),
            std::to_string(used.size()));
    for (int64_t b = 0; b < p.batch; ++b) {
      OMNI_REQUIRE(used[b] >= 0 && used[b] <= p.k_len[b], "options.seqused_k",
              fmt::format("entry {} in [0, {}]", b, p.k_len[b]), std::to_string(used[b]));
      p.k_len[b] = used[b];
    }
  }
  for (int64_t b = 0; b < p.batch; ++b) {
    p.max_q_len = std::max(p.max_q_len, p.q_len[b]);
    p.max_k_len = std::max(p.max_k_len, p.k_len[b]);
    p.total_q += p.q_len[b];
  }
}

void fill_semantics(Problem& p, const AttentionOptions& o) {
  static_cast<ScoreSemantics&>(p) = read_score_semantics(o, p.d, p.batch, p.hq, p.device);
  p.deterministic = o.deterministic;
  p.stream = o.cuda_stream;
}

void fill_common(Problem& p, const TensorView& q, const TensorView& k, const TensorView& v,
                 const AttentionOptions& o) {
  p.varlen = o.cu_seqlens_q.has_value();
  check_qkv(q, k, v, p.varlen);
  if (p.varlen) {
    require_device(*o.cu_seqlens_q, "options.cu_seqlens_q", q.device);
    require_device(*o.cu_seqlens_k, "options.cu_seqlens_k", q.device);
  }
  p.dtype = q.dtype;
  p.device = q.device;
  p.requested = o.backend;
  const int nd = q.ndim;
  p.hq = q.shape[nd - 2];
  p.hkv = k.shape[nd - 2];
  p.d = q.shape[nd - 1];
  p.dv = v.shape[nd - 1];
  fill_sequences(p, q, k, o);
  fill_semantics(p, o);
  fill_sparse(p, o);
  p.q = operand(q, p.varlen);
  p.k = operand(k, p.varlen);
  p.v = operand(v, p.varlen);
}

// O-like tensor: [B, Sq, Hq, Dv] or [total_q, Hq, Dv], dtype of q.
void check_out_like(const TensorView& t, const char* name, const Problem& p, const TensorView& q) {
  require_defined(t, name);
  if (p.varlen) require_shape(t, name, {q.shape[0], p.hq, p.dv});
  else require_shape(t, name, {p.batch, q.shape[1], p.hq, p.dv});
  require_dtype(t, name, q.dtype);
  require_device(t, name, q.device);
  require_inner_contiguous(t, name);
  require_addressable(t, name);
}

RowOperand check_lse(const TensorView& t, const char* name, const Problem& p, const TensorView& q) {
  require_defined(t, name);
  require_dtype(t, name, DType::f32);
  require_device(t, name, q.device);
  require_addressable(t, name);
  if (p.varlen) {
    require_shape(t, name, {p.hq, q.shape[0]});
    return {t.ptr<float>(), 0, t.stride[0], t.stride[1]};
  }
  require_shape(t, name, {p.batch, p.hq, q.shape[1]});
  return {t.ptr<float>(), t.stride[0], t.stride[1], t.stride[2]};
}

}  // namespace

ScoreSemantics read_score_semantics(const AttentionOptions& o, int64_t d, int64_t batch, int64_t hq, Device device) {
  ScoreSemantics p;
  const double scale = o.softmax_scale.value_or(1.0 / std::sqrt(static_cast<double>(d)));
  OMNI_REQUIRE(std::isfinite(scale) && scale != 0.0, "options.softmax_scale", "a finite non-zero number",
          fmt::format("{}", scale));
  OMNI_REQUIRE(std::isfinite(o.softcap) && o.softcap >= 0.0, "options.softcap", "a finite value >= 0 (0 = off)",
          fmt::format("{}", o.softcap));
  OMNI_REQUIRE(o.window_left >= -1, "options.window_left", ">= -1 (-1 = unbounded)", std::to_string(o.window_left));
  OMNI_REQUIRE(o.window_right >= -1, "options.window_right", ">= -1 (-1 = unbounded)", std::to_string(o.window_right));
  OMNI_REQUIRE(o.sinks >= 0, "options.sinks", ">= 0", std::to_string(o.sinks));
  p.scale = scale;
  p.softcap = o.softcap;
  p.window_left = o.window_left;
  p.window_right = o.causal ? 0 : o.window_right;
  p.sinks = o.sinks;
  if (o.alibi_slopes) {
    const TensorView& a = *o.alibi_slopes;
    require_defined(a, "options.alibi_slopes");
    require_dtype(a, "options.alibi_slopes", DType::f32);
    require_device(a, "options.alibi_slopes", device);
    const bool per_head = a.ndim == 1 && a.shape[0] == hq;
    const bool per_batch = a.ndim == 2 && a.shape[0] == batch && a.shape[1] == hq;
    OMNI_REQUIRE(per_head || per_batch, "options.alibi_slopes", fmt::format("shape [{}] or [{}, {}]", hq, batch, hq),
            shape_string(a));
    // A dim of size 1 may have any stride.
    OMNI_REQUIRE((a.stride[a.ndim - 1] == 1 || hq == 1) && (per_head || a.stride[0] == hq || batch == 1),
            "options.alibi_slopes", "a contiguous tensor", "strided");
    p.alibi = a.ptr<const float>();
    p.alibi_batch_stride = per_batch ? hq : 0;
  }
  if (o.sink_logits) {
    const TensorView& s = *o.sink_logits;
    require_defined(s, "options.sink_logits");
    require_dtype(s, "options.sink_logits", DType::f32);
    require_device(s, "options.sink_logits", device);
    require_shape(s, "options.sink_logits", {hq});
    OMNI_REQUIRE(s.stride[0] == 1 || hq == 1, "options.sink_logits", "a contiguous tensor", "strided");
    p.sink_logits = s.ptr<const float>();
  }
  return p;
}

double Problem::visible_pairs() const {
  double pairs = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const SequenceMask m = mask(b);
    for (int64_t i = 0; i < q_len[b]; ++i) {
      const int64_t end = m.key_end(i), begin = std::min(m.key_begin(i), end);
      pairs += static_cast<double>(end - begin) + static_cast<double>(std::min(sinks, begin));
    }
  }
  return pairs * static_cast<double>(hq);
}

ForwardProblem make_forward_problem(const TensorView& q, const TensorView& k, const TensorView& v,
                                    const ForwardOutputs& outputs, const AttentionOptions& options) {
  ForwardProblem p;
  fill_common(p, q, k, v, options);
  check_out_like(outputs.out, "outputs.out", p, q);
  for (auto [t, name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}})
    require_disjoint(outputs.out, "outputs.out", *t, name);
  p.out = operand(outputs.out, p.varlen);
  if (outputs.lse) {
    p.lse = check_lse(*outputs.lse, "outputs.lse", p, q);
    for (auto [t, name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}, {&outputs.out, "outputs.out"}})
      require_disjoint(*outputs.lse, "outputs.lse", *t, name);
  }
  return p;
}

BackwardProblem make_backward_problem(const TensorView& q, const TensorView& k, const TensorView& v,
                                      const TensorView& out, const TensorView& lse, const TensorView& dout,
                                      const BackwardOutputs& grads, const AttentionOptions& options) {
  BackwardProblem p;
  fill_common(p, q, k, v, options);
  check_out_like(out, "out", p, q);
  check_out_like(dout, "dout", p, q);
  p.lse = check_lse(lse, "lse", p, q);
  p.out = operand(out, p.varlen);
  p.dout = operand(dout, p.varlen);
  const std::pair<const TensorView*, const char*> grad_list[] = {{&grads.dq, "grads.dq"}, {&grads.dk, "grads.dk"},
                                                                 {&grads.dv, "grads.dv"}};
  const std::pair<const TensorView*, const char*> like[] = {{&q, "q"}, {&k, "k"}, {&v, "v"}};
  for (int i = 0; i < 3; ++i) {
    const TensorView& g = *grad_list[i].first;
    const char* name = grad_list[i].second;
    const TensorView& ref = *like[i].first;
    require_defined(g, name);
    OMNI_REQUIRE(g.ndim == ref.ndim && std::equal(g.shape.begin(), g.shape.begin() + g.ndim, ref.shape.begin()), name,
            "shape " + shape_string(ref) + " (" + like[i].second + "'s)", shape_string(g));
    require_dtype(g, name, q.dtype);
    require_device(g, name, q.device);
    require_inner_contiguous(g, name);
    require_addressable(g, name);
  }
  std::vector<std::pair<const TensorView*, const char*>> all = {{&q, "q"},       {&k, "k"},     {&v, "v"},
                                                                {&out, "out"},   {&lse, "lse"}, {&dout, "dout"},
                                                                {&grads.dq, "grads.dq"}, {&grads.dk, "grads.dk"},
                                                                {&grads.dv, "grads.dv"}};
  if (options.sink_logits) {
    OMNI_REQUIRE(grads.dsink_logits.has_value(), "grads.dsink_logits", "a f32 [Hq] tensor (sink_logits is set)", "none");
    const TensorView& ds = *grads.dsink_logits;
    require_defined(ds, "grads.dsink_logits");
    require_dtype(ds, "grads.dsink_logits", DType::f32);
    require_device(ds, "grads.dsink_logits", q.device);
    require_shape(ds, "grads.dsink_logits", {p.hq});
    OMNI_REQUIRE(ds.stride[0] == 1 || p.hq == 1, "grads.dsink_logits", "a contiguous tensor", "strided");
    p.dsink_logits = ds.ptr<float>();
    all.push_back({&ds, "grads.dsink_logits"});
  }
  // Every written tensor is disjoint from every other tensor of the call.
  for (size_t w = 6; w < all.size(); ++w)
    for (size_t o = 0; o < all.size(); ++o)
      if (o != w) require_disjoint(*all[w].first, all[w].second, *all[o].first, all[o].second);
  p.grad_q = operand(grads.dq, p.varlen);
  p.grad_k = operand(grads.dk, p.varlen);
  p.grad_v = operand(grads.dv, p.varlen);
  return p;
}

}  // namespace omniattn::detail
