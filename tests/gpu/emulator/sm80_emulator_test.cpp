// The real sm_80 forward kernel code, run on the CPU under the host emulation, against the float64 reference:
// fragment layouts, masks, tile ranges, pipeline waits and the epilogue are checked without a GPU.
// Shapes are small: every CUDA thread is a fiber. Build and run with tests/gpu/emulator/run.sh.
#include <cstring>

#include "cuda/flash/fwd_arguments.hpp"
#include "gpu/emulator/emulated_kernels.hpp"
#include "gpu/sm80_case.hpp"

namespace omniattn::testing {
namespace {

using detail::cuda::GqaPacking;

// A host copy of `t` laid out head-major with padded rows ([B, H, S, D + 8] seen as [B, S, H, D]), as the GPU
// tests' strided case.
struct StridedCopy {
  std::vector<uint8_t> storage;
  TensorView view;
  explicit StridedCopy(const HostTensor& t) {
    view = t.view();
    const int64_t row = view.shape[view.ndim - 1] + 8;
    if (view.ndim == 3)
      view.stride = {row, view.shape[0] * row, 1, 0};
    else
      view.stride = {view.shape[2] * view.shape[1] * row, row, view.shape[1] * row, 1};
    int64_t elements = 1;
    for (int d = 0; d < view.ndim; ++d) elements += (view.shape[d] - 1) * view.stride[d];
    const int64_t es = dtype_size(view.dtype);
    storage.assign(static_cast<size_t>(elements * es) + 16, 0xFF);
    // 16-byte aligned start, as cudaMalloc gives.
    uint8_t* base = storage.data() + (16 - reinterpret_cast<uintptr_t>(storage.data()) % 16) % 16;
    view.data = base;
    for_each_element(view, [&](int64_t linear, int64_t offset) {
      std::memcpy(base + offset * es, static_cast<const uint8_t*>(t.view().data) + linear * es, es);
    });
  }
  void copy_back(HostTensor& t) const {
    const int64_t es = dtype_size(view.dtype);
    for_each_element(view, [&](int64_t linear, int64_t offset) {
      std::memcpy(static_cast<uint8_t*>(t.view().data) + linear * es,
                  static_cast<const uint8_t*>(view.data) + offset * es, es);
    });
  }
};

Sm80Result emulate(const Sm80Case& c) {
  const Sm80Inputs in = make_inputs(c);
  Sm80Result res;
  res.out = out_like(c, in);
  res.lse = lse_like(c, in);
  std::optional<TensorView> lse_view;
  if (c.with_lse) lse_view = res.lse.view();
  std::optional<StridedCopy> q, k, v, out;
  if (c.strided) q.emplace(in.q), k.emplace(in.k), v.emplace(in.v), out.emplace(res.out);
  const auto p = c.strided
                     ? detail::make_forward_problem(q->view, k->view, v->view, {out->view, lse_view}, in.host_options)
                     : detail::make_forward_problem(in.q, in.k, in.v, {res.out.view(), lse_view}, in.host_options);
  const auto tuning = detail::cuda::fwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv));
  EXPECT_GT(tuning.d, 0) << c.describe();
  auto launch = detail::cuda::make_fwd_launch(p, tuning, c.packing);
  if (!launch.seqs.empty()) launch.params.seqs = launch.seqs.data();
  if (!launch.empty())
    EXPECT_TRUE(detail::cuda::emulate_fwd_sm80(p.dtype, static_cast<int>(p.d), static_cast<int>(p.dv), launch.params));
  if (c.strided) out->copy_back(res.out);
  check_against_reference(c, in, res);
  return res;
}

TEST(Sm80Emulated, Basic) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.sq = c.sk = 64;
  emulate(c);
}

TEST(Sm80Emulated, HeadDims) {
  const int64_t dims[][2] = {{64, 64}, {96, 96}, {128, 128}, {192, 192}, {192, 128}, {256, 256}};
  for (const auto& hd : dims) {
    Sm80Case c;
    c.batch = 1;
    c.hq = c.hkv = 1;
    c.d = hd[0];
    c.dv = hd[1];
    c.sq = 130;
    c.sk = 150;
    c.causal = hd[0] == 128;
    emulate(c);
  }
  Sm80Case c;
  c.dtype = DType::f16;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.sq = c.sk = 100;
  emulate(c);
}

TEST(Sm80Emulated, OddLengthsAndCausal) {
  for (int64_t n : {1, 17, 113})
    for (bool causal : {false, true}) {
      Sm80Case c;
      c.batch = 1;
      c.hq = c.hkv = 1;
      c.sq = n;
      c.sk = n + 50;
      c.causal = causal;
      emulate(c);
      std::swap(c.sq, c.sk);
      emulate(c);
    }
}

TEST(Sm80Emulated, WindowsSinksVarlen) {
  Sm80Case c;
  c.hq = c.hkv = 1;
  c.q_lens = {0, 17, 150, 3};
  c.k_lens = {9, 0, 140, 70};
  c.causal = true;
  c.window_left = 30;
  c.sinks = 3;
  emulate(c);
  c.window_right = 10;
  c.causal = false;
  emulate(c);
}

TEST(Sm80Emulated, GqaScoreModsSeqused) {
  Sm80Case c;
  c.batch = 2;
  c.hq = 3;
  c.hkv = 1;
  c.sq = 20;
  c.sk = 90;
  c.causal = true;
  c.softcap = 1.5;
  c.alibi = Sm80Case::Alibi::per_batch;
  c.sink_logits = true;
  c.seqused_k = {60, 0};
  for (GqaPacking packing : {GqaPacking::never, GqaPacking::always}) {
    c.packing = packing;
    emulate(c);
  }
}

TEST(Sm80Emulated, SevenQueryHeadsOnOneKvHead) {
  Sm80Case c;
  c.batch = 1;
  c.hq = 7;
  c.hkv = 1;
  c.sk = 150;
  c.causal = true;
  for (int64_t sq : {1, 100}) {  // 1: a decode step, packed automatically
    c.sq = sq;
    for (GqaPacking packing : {GqaPacking::automatic, GqaPacking::never, GqaPacking::always}) {
      c.packing = packing;
      emulate(c);
    }
  }
}

TEST(Sm80Emulated, MaskedTilesAreNeverLoaded) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.sq = 16;
  c.sk = 700;
  c.causal = true;
  c.window_left = 100;
  c.sinks = 4;
  c.poison_keys_begin = 128;
  c.poison_keys_end = 584 - 128;
  emulate(c);
}

TEST(Sm80Emulated, StridedTensors) {
  Sm80Case c;
  c.strided = true;
  c.d = 96;
  c.hq = 4;
  c.hkv = 2;
  c.batch = 1;
  c.sq = c.sk = 70;
  c.causal = true;
  emulate(c);
  c.d = 192;
  c.dv = 128;
  c.q_lens = {40, 0, 70};
  c.k_lens = {20, 30, 100};
  emulate(c);
}

TEST(Sm80Emulated, SinksAcrossTilesEmptyRowsNegativeScale) {
  Sm80Case c;
  c.batch = 1;
  c.hq = c.hkv = 1;
  c.causal = true;
  c.window_left = 20;
  c.sinks = 70;  // spans two KV tiles
  c.sq = 160;
  c.sk = 140;  // Sq > Sk: empty rows
  c.sink_logits = true;
  emulate(c);
  c.sinks = 0;
  c.window_left = -1;
  c.sink_logits = false;
  c.scale = -0.2;  // general-logits path
  emulate(c);
  c.scale.reset();
  c.with_lse = false;
  c.window_left = 3;
  c.window_right = 3;
  c.causal = false;
  emulate(c);
}

}  // namespace
}  // namespace omniattn::testing
