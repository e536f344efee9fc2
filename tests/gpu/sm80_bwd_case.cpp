#include "gpu/sm80_bwd_case.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "omniattn/device_mask.hpp"

namespace omniattn::testing {
namespace {

// Head-major padded layout of a [B, S, H, D] (or varlen [T, H, D]) tensor: strides of [B, H, S, D + 8].
std::vector<int64_t> head_major_strides(const TensorView& v) {
  const int64_t row = v.shape[v.ndim - 1] + 8;
  if (v.ndim == 3) return {row, v.shape[0] * row, 1};
  const int64_t s = v.shape[1], h = v.shape[2];
  return {h * s * row, row, s * row, 1};
}

DeviceTensor to_device(const HostTensor& h, bool strided) {
  return strided ? DeviceTensor::upload(h, head_major_strides(h.view())) : DeviceTensor::upload(h);
}

std::optional<TensorView> dsink_view(const Sm80Case& c, const HostTensor& t) {
  return c.sink_logits ? std::optional<TensorView>(t.view()) : std::nullopt;
}

// Queries and used keys of sequence b.
int64_t q_len_of(const Sm80Case& c, int64_t b) { return c.varlen() ? c.q_lens[static_cast<size_t>(b)] : c.sq; }
int64_t k_len_of(const Sm80Case& c, int64_t b) {
  if (!c.seqused_k.empty()) return c.seqused_k[static_cast<size_t>(b)];
  return c.varlen() ? c.k_lens[static_cast<size_t>(b)] : c.sk;
}

// The float64 oracle's view of a block mask: one dense mask of 128 x 128 blocks, all partial, whose host
// functor is the mask's pair rule written plainly from its dense block map and element rule (with the mask's
// batch / head broadcasting). `storage` keeps the dense mask and the map alive.
struct DenseOracle {
  BlockMask dense;
  std::shared_ptr<std::vector<BlockMask::Block>> map;
  BlockMaskView view;
};
std::shared_ptr<DenseOracle> dense_oracle(const Sm80Case& c, const BlockMask& m) {
  auto o = std::make_shared<DenseOracle>();
  const BlockMask::Geometry& g = m.geometry();
  const BlockMask::Geometry dense_g{1, 1, g.q_tokens, g.k_tokens, 128, 128};
  o->dense = BlockMask::from_block_map(
      dense_g, std::vector<BlockMask::Block>(static_cast<size_t>(dense_g.q_blocks() * dense_g.k_blocks()),
                                             BlockMask::Block::partial));
  o->map = std::make_shared<std::vector<BlockMask::Block>>(m.to_block_map());
  const auto map = o->map;
  const BlockMaskView mv = m.view();
  const int64_t hq = c.hq;
  o->view = o->dense.view();
  o->view.host_element_mask = [map, mv, g, hq, c](int64_t b, int64_t h, int64_t i, int64_t j) {
    const int64_t mb = g.batch == 1 ? 0 : b, mh = g.heads == 1 ? 0 : g.heads == hq ? h : h / (hq / g.heads);
    const size_t at = static_cast<size_t>(((mb * g.heads + mh) * g.q_blocks() + i / g.block_q) * g.k_blocks() + j / g.block_k);
    const BlockMask::Block kind = (*map)[at];
    if (kind == BlockMask::Block::full) return true;
    if (kind == BlockMask::Block::skipped) return false;
    return mv.element.visible(mh, i, j, q_len_of(c, b), k_len_of(c, b));
  };
  return o;
}

}  // namespace

BwdInputs make_bwd_inputs(const Sm80Case& c, const BlockMask* mask) {
  BwdInputs in;
  in.mask = mask;
  in.fwd = make_inputs(c);
  in.fwd.host_options = bwd_host_options(c, in, false);
  // O and LSE of the float64 reference forward; O rounded to the input dtype as a forward kernel stores it.
  HostTensor q64 = in.fwd.q.to(DType::f64), k64 = in.fwd.k.to(DType::f64), v64 = in.fwd.v.to(DType::f64);
  HostTensor out64 = out_like(c, in.fwd).to(DType::f64);
  in.lse = lse_like(c, in.fwd);
  AttentionOptions ref = in.fwd.host_options;
  ref.backend = Backend::reference;
  attention_forward(q64, k64, v64, {out64, in.lse.view()}, ref);
  in.out = out64.to(c.dtype);
  in.out64 = out64;
  in.dout = host_tensor(c.dtype, in.out.view());
  fill_normal(in.dout);
  return in;
}

BwdResult bwd_outputs_like(const Sm80Case& c, const BwdInputs& in) {
  BwdResult r;
  r.dq = host_tensor(c.dtype, in.fwd.q.view());
  r.dk = host_tensor(c.dtype, in.fwd.k.view());
  r.dv = host_tensor(c.dtype, in.fwd.v.view());
  r.dsink = HostTensor(DType::f32, {c.hq});
  for (HostTensor* t : {&r.dq, &r.dk, &r.dv, &r.dsink}) poison(*t);
  return r;
}

AttentionOptions bwd_host_options(const Sm80Case& c, const BwdInputs& in, bool deterministic) {
  // Views into `in` itself (Sm80Inputs::host_options points at the tensors of the object make_inputs built,
  // which copies of the inputs do not own).
  AttentionOptions o = in.fwd.host_options;
  if (o.alibi_slopes) o.alibi_slopes = in.fwd.alibi.view();
  if (o.sink_logits) o.sink_logits = in.fwd.sink.view();
  if (o.cu_seqlens_q) o.cu_seqlens_q = in.fwd.cu_q.view();
  if (o.cu_seqlens_k) o.cu_seqlens_k = in.fwd.cu_k.view();
  if (o.seqused_k) o.seqused_k = in.fwd.used.view();
  (void)c;
  if (in.mask) o.block_mask = in.mask->view();
  o.deterministic = deterministic;
  return o;
}

void check_bwd_against_reference(const Sm80Case& c, const BwdInputs& in, const BwdResult& res) {
  // Float64 oracle on float64 copies; the same-precision naive backward for the tolerance.
  BwdResult ref = bwd_outputs_like(c, in), naive = bwd_outputs_like(c, in);
  HostTensor dq64 = ref.dq.to(DType::f64), dk64 = ref.dk.to(DType::f64), dv64 = ref.dv.to(DType::f64);
  const AttentionOptions host_options = bwd_host_options(c, in, false);
  AttentionOptions ref_options = host_options;
  ref_options.backend = Backend::reference;
  std::shared_ptr<DenseOracle> oracle;
  if (in.mask) ref_options.block_mask = (oracle = dense_oracle(c, *in.mask))->view;
  attention_backward(in.fwd.q.to(DType::f64), in.fwd.k.to(DType::f64), in.fwd.v.to(DType::f64),
                     in.out.to(DType::f64), in.lse, in.dout.to(DType::f64), {dq64, dk64, dv64, dsink_view(c, ref.dsink)},
                     ref_options);
  detail::reference::backward_lowp(detail::make_backward_problem(
      in.fwd.q, in.fwd.k, in.fwd.v, in.out, in.lse, in.dout, {naive.dq, naive.dk, naive.dv, dsink_view(c, naive.dsink)},
      host_options));
  EXPECT_TRUE(within_tolerance(res.dq, naive.dq, dq64, c.dtype, "dq")) << c.describe();
  EXPECT_TRUE(within_tolerance(res.dk, naive.dk, dk64, c.dtype, "dk")) << c.describe();
  EXPECT_TRUE(within_tolerance(res.dv, naive.dv, dv64, c.dtype, "dv")) << c.describe();
  if (c.sink_logits) {
    // d sink_h = -sum_i exp(sink_h - lse_i) D_i. The reference and the naive run recompute D_i = sum_j P dP; a
    // kernel takes D_i = rowsum(dO * O) from the O it is given, rounded to the input dtype: that input rounding
    // propagates as -sum_i exp(sink_h - lse_i) sum_c dO_ic (O_ic - O64_ic), computed here in float64 and allowed
    // on top of the rule.
    const int64_t dv = c.head_dim_v(), rows = in.out.numel() / (c.hq * dv);
    double propagated = 0;
    for (int64_t h = 0; h < c.hq; ++h) {
      double sum = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t lse_index = c.varlen() ? h * rows + r : ((r / c.sq) * c.hq + h) * c.sq + r % c.sq;
        double dot = 0;
        for (int64_t col = 0; col < dv; ++col) {
          const int64_t i = (r * c.hq + h) * dv + col;
          dot += in.dout.get(i) * (in.out.get(i) - in.out64.get(i));
        }
        sum += std::exp(in.fwd.sink.get(h) - in.lse.get(lse_index)) * dot;
      }
      propagated = std::max(propagated, std::abs(sum));
    }
    const double err = max_abs_diff(res.dsink, ref.dsink), naive_err = max_abs_diff(naive.dsink, ref.dsink);
    const double bound = 2 * naive_err + rounding_term(ref.dsink, c.dtype) + propagated;
    EXPECT_LE(err, bound) << "dsink: 2 * naive error " << naive_err << " + rounding term + O's rounding "
                          << propagated << "; " << c.describe();
  }
}

bool same_gradients(const BwdResult& a, const BwdResult& b, bool with_dsink) {
  return bitwise_equal(a.dq, b.dq) && bitwise_equal(a.dk, b.dk) && bitwise_equal(a.dv, b.dv) &&
         (!with_dsink || bitwise_equal(a.dsink, b.dsink));
}

BwdResult run_sm80_backward(const Sm80Case& c, const BwdInputs& in, bool deterministic, bool check) {
  BwdResult res = bwd_outputs_like(c, in);
  DeviceTensor q = to_device(in.fwd.q, c.strided), k = to_device(in.fwd.k, c.strided),
               v = to_device(in.fwd.v, c.strided), out = to_device(in.out, c.strided),
               dout = to_device(in.dout, c.strided), lse = DeviceTensor::upload(in.lse);
  auto gradient = [&](const HostTensor& like) {
    return c.strided ? DeviceTensor::allocate(c.dtype, like.view(), head_major_strides(like.view()))
                     : DeviceTensor::allocate(c.dtype, like.view());
  };
  DeviceTensor dq = gradient(in.fwd.q), dk = gradient(in.fwd.k), dv = gradient(in.fwd.v);
  DeviceTensor dsink = DeviceTensor::allocate(DType::f32, res.dsink.view());
  DeviceTensor alibi, sink, cu_q, cu_k, used;
  AttentionOptions o = bwd_host_options(c, in, deterministic);
  o.backend = c.backend;
  DeviceBlockMask mask;
  if (in.mask) o.block_mask = (mask = DeviceBlockMask::upload(*in.mask, 0)).view();
  if (o.alibi_slopes) o.alibi_slopes = (alibi = DeviceTensor::upload(in.fwd.alibi)).view();
  if (o.sink_logits) o.sink_logits = (sink = DeviceTensor::upload(in.fwd.sink)).view();
  if (o.cu_seqlens_q) o.cu_seqlens_q = (cu_q = DeviceTensor::upload(in.fwd.cu_q)).view();
  if (o.cu_seqlens_k) o.cu_seqlens_k = (cu_k = DeviceTensor::upload(in.fwd.cu_k)).view();
  if (o.seqused_k) o.seqused_k = (used = DeviceTensor::upload(in.fwd.used)).view();
  std::optional<TensorView> dsink_grad;
  if (c.sink_logits) dsink_grad = dsink.view();
  EXPECT_NO_THROW(attention_backward(q, k, v, out, lse, dout, {dq.view(), dk.view(), dv.view(), dsink_grad}, o))
      << c.describe();
  const cudaError_t sync = cudaDeviceSynchronize();
  EXPECT_EQ(sync, cudaSuccess) << cudaGetErrorString(sync) << " in " << c.describe();
  res.dq = dq.download();
  res.dk = dk.download();
  res.dv = dv.download();
  if (c.sink_logits) res.dsink = dsink.download();
  if (check) check_bwd_against_reference(c, in, res);
  return res;
}

}  // namespace omniattn::testing
