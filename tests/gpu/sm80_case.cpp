#include "gpu/sm80_case.hpp"

#include <cmath>
#include <sstream>

#include "omniattn/device_mask.hpp"

namespace omniattn::testing {
namespace {

int64_t total(const std::vector<int>& lens) {
  int64_t t = 0;
  for (int x : lens) t += x;
  return t;
}

HostTensor cu_seqlens(const std::vector<int>& lens) {
  HostTensor t(DType::i32, {static_cast<int64_t>(lens.size()) + 1});
  int64_t acc = 0;
  t.set(0, 0);
  for (size_t i = 0; i < lens.size(); ++i) t.set(static_cast<int64_t>(i) + 1, static_cast<double>(acc += lens[i]));
  return t;
}

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

// Sets keys [from, to) of one sequence, whose key 0 is token `first_token`, to NaN in a K/V tensor laid out
// [tokens..., H, D] (all heads and dims).
void poison_keys(HostTensor& t, int64_t first_token, int64_t from, int64_t to) {
  const TensorView& v = t.view();
  const int64_t row = v.shape[v.ndim - 2] * v.shape[v.ndim - 1];
  for (int64_t j = std::max<int64_t>(from, 0); j < to; ++j)
    for (int64_t i = 0; i < row; ++i) t.set((first_token + j) * row + i, std::nan(""));
}

}  // namespace

std::string Sm80Case::describe() const {
  std::ostringstream s;
  s << to_string(backend) << " " << to_string(dtype) << " B=" << batch << " Sq=" << sq << " Sk=" << sk << " Hq=" << hq << " Hkv=" << hkv
    << " D=" << d << " Dv=" << head_dim_v() << (causal ? " causal" : "") << " window=(" << window_left << ","
    << window_right << ") sinks=" << sinks << " softcap=" << softcap << " alibi=" << static_cast<int>(alibi)
    << " sink_logits=" << sink_logits << " varlen=" << varlen() << " seqused=" << !seqused_k.empty()
    << " strided=" << strided << " pack=" << static_cast<int>(packing);
  if (mask) {
    const BlockMask::Geometry& g = mask->geometry();
    s << " block_mask=(batch " << g.batch << ", heads " << g.heads << ", " << g.block_q << "x" << g.block_k
      << ", listed " << mask->listed_blocks() << ")";
  }
  return s.str();
}

Sm80Inputs make_inputs(const Sm80Case& c) {
  Sm80Inputs in;
  const int64_t dv = c.head_dim_v();
  if (c.varlen()) {
    const int64_t tq = total(c.q_lens), tk = total(c.k_lens);
    in.q = random_normal(c.dtype, {tq, c.hq, c.d}, c.input_stddev);
    in.k = random_normal(c.dtype, {tk, c.hkv, c.d}, c.input_stddev);
    in.v = random_normal(c.dtype, {tk, c.hkv, dv});
    in.cu_q = cu_seqlens(c.q_lens);
    in.cu_k = cu_seqlens(c.k_lens);
    in.host_options.cu_seqlens_q = in.cu_q.view();
    in.host_options.cu_seqlens_k = in.cu_k.view();
  } else {
    in.q = random_normal(c.dtype, {c.batch, c.sq, c.hq, c.d}, c.input_stddev);
    in.k = random_normal(c.dtype, {c.batch, c.sk, c.hkv, c.d}, c.input_stddev);
    in.v = random_normal(c.dtype, {c.batch, c.sk, c.hkv, dv});
  }
  // Token of key 0 and stored keys of each sequence (for poisoning).
  std::vector<int64_t> first_key, stored_keys;
  if (c.varlen()) {
    int64_t acc = 0;
    for (int len : c.k_lens) first_key.push_back(acc), stored_keys.push_back(len), acc += len;
  } else {
    for (int64_t b = 0; b < c.batch; ++b) first_key.push_back(b * c.sk), stored_keys.push_back(c.sk);
  }
  if (!c.seqused_k.empty()) {
    in.used = HostTensor(DType::i32, {static_cast<int64_t>(c.seqused_k.size())});
    for (size_t b = 0; b < c.seqused_k.size(); ++b) in.used.set(static_cast<int64_t>(b), c.seqused_k[b]);
    in.host_options.seqused_k = in.used.view();
  }
  for (HostTensor* t : {&in.k, &in.v})
    for (size_t b = 0; b < first_key.size(); ++b) {
      if (!c.seqused_k.empty()) poison_keys(*t, first_key[b], c.seqused_k[b], stored_keys[b]);  // keys past seqused_k
      poison_keys(*t, first_key[b], c.poison_keys_begin, std::min(c.poison_keys_end, stored_keys[b]));
    }

  if (c.mask) in.host_options.block_mask = c.mask->view();
  in.host_options.causal = c.causal;
  in.host_options.window_left = c.window_left;
  in.host_options.window_right = c.window_right;
  in.host_options.sinks = c.sinks;
  in.host_options.softcap = c.softcap;
  in.host_options.softmax_scale = c.scale;
  const int64_t nb = c.varlen() ? static_cast<int64_t>(c.q_lens.size()) : c.batch;
  if (c.alibi != Sm80Case::Alibi::none) {
    in.alibi =
        c.alibi == Sm80Case::Alibi::per_head ? HostTensor(DType::f32, {c.hq}) : HostTensor(DType::f32, {nb, c.hq});
    for (int64_t i = 0; i < in.alibi.numel(); ++i) in.alibi.set(i, 0.05 * static_cast<double>(1 + i % 7));
    in.host_options.alibi_slopes = in.alibi.view();
  }
  if (c.sink_logits) {
    in.sink = random_normal(DType::f32, {c.hq}, 1.5);
    in.host_options.sink_logits = in.sink.view();
  }
  return in;
}

HostTensor out_like(const Sm80Case& c, const Sm80Inputs& in) {
  HostTensor t = c.varlen() ? HostTensor(c.dtype, {in.q.view().shape[0], c.hq, c.head_dim_v()})
                            : HostTensor(c.dtype, {c.batch, c.sq, c.hq, c.head_dim_v()});
  poison(t);
  return t;
}

HostTensor lse_like(const Sm80Case& c, const Sm80Inputs& in) {
  HostTensor t =
      c.varlen() ? HostTensor(DType::f32, {c.hq, in.q.view().shape[0]}) : HostTensor(DType::f32, {c.batch, c.hq, c.sq});
  poison(t);
  return t;
}

Sm80Result run_sm80(const Sm80Case& c, const Sm80Inputs& in, bool check) {
  Sm80Result res;
  const HostTensor out_shape = out_like(c, in), lse_shape = lse_like(c, in);

  // Device inputs and options.
  DeviceTensor q = to_device(in.q, c.strided), k = to_device(in.k, c.strided), v = to_device(in.v, c.strided);
  DeviceTensor out = c.strided ? DeviceTensor::allocate(c.dtype, out_shape.view(), head_major_strides(out_shape.view()))
                               : DeviceTensor::allocate(c.dtype, out_shape.view());
  DeviceTensor lse = DeviceTensor::allocate(DType::f32, lse_shape.view());
  DeviceTensor alibi, sink, cu_q, cu_k, used;
  AttentionOptions o = in.host_options;
  o.backend = c.backend;
  if (o.alibi_slopes) o.alibi_slopes = (alibi = DeviceTensor::upload(in.alibi)).view();
  if (o.sink_logits) o.sink_logits = (sink = DeviceTensor::upload(in.sink)).view();
  if (o.cu_seqlens_q) o.cu_seqlens_q = (cu_q = DeviceTensor::upload(in.cu_q)).view();
  if (o.cu_seqlens_k) o.cu_seqlens_k = (cu_k = DeviceTensor::upload(in.cu_k)).view();
  if (o.seqused_k) o.seqused_k = (used = DeviceTensor::upload(in.used)).view();
  DeviceBlockMask mask;
  if (c.mask) o.block_mask = (mask = DeviceBlockMask::upload(*c.mask, 0)).view();

  detail::cuda::set_gqa_packing(c.packing);
  std::optional<TensorView> lse_view;
  if (c.with_lse) lse_view = lse.view();
  EXPECT_NO_THROW(attention_forward(q, k, v, {out.view(), lse_view}, o)) << c.describe();
  detail::cuda::set_gqa_packing(detail::cuda::GqaPacking::automatic);
  const cudaError_t sync = cudaDeviceSynchronize();
  EXPECT_EQ(sync, cudaSuccess) << cudaGetErrorString(sync) << " in " << c.describe();
  res.out = out.download();
  res.lse = lse.download();
  if (check) check_against_reference(c, in, res);
  return res;
}

void check_against_reference(const Sm80Case& c, const Sm80Inputs& in, Sm80Result& res) {
  // Float64 oracle on float64 copies, and the same-precision naive implementation for the tolerance.
  const HostTensor out_shape = out_like(c, in);
  HostTensor q64 = in.q.to(DType::f64), k64 = in.k.to(DType::f64), v64 = in.v.to(DType::f64);
  HostTensor out64 = out_shape.to(DType::f64), lse64 = lse_like(c, in);
  AttentionOptions ref_options = in.host_options;
  ref_options.backend = Backend::reference;
  attention_forward(q64, k64, v64, {out64, lse64.view()}, ref_options);
  HostTensor out_naive = out_shape, lse_naive = lse_like(c, in);
  const auto naive = detail::make_forward_problem(in.q, in.k, in.v, {out_naive, lse_naive.view()}, in.host_options);
  detail::reference::forward_lowp(naive);

  EXPECT_TRUE(within_tolerance(res.out, out_naive, out64, c.dtype, "out")) << c.describe();
  if (c.with_lse) EXPECT_TRUE(within_tolerance(res.lse, lse_naive, lse64, DType::f32, "lse")) << c.describe();
  res.out_err = max_abs_diff(res.out, out64);
  res.out_bound = 2 * max_abs_diff(out_naive, out64) + rounding_term(out64, c.dtype);
}

}  // namespace omniattn::testing
