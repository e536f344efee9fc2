// The CUDA decode kernels' code compiled for the host emulation (src/cuda/common/emulation.hpp). No CUDA header
// may be included in this translation unit.
#define OMNIATTN_CUDA_EMULATION 1
#include "gpu/decode_emulator/decode_emulated.hpp"

#include "cuda/decode/decode_config.hpp"
#include "cuda/decode/decode_cta.cuh"
#include "cuda/decode/decode_kernel.cuh"
#include "cuda/decode/decode_params_fill.hpp"
#include "decode/decode_plan.hpp"

namespace omniattn::detail::cuda {
namespace {

template <class Traits>
void run_grid(const DecodeParams& p, int grid, int merges) {
  for (int c = 0; c < grid; ++c)
    emu::run_cta(dim3(c), Traits::kThreads, Traits::kSmemBytes, [&p, c] { decode_cta<Traits>(p, c); });
  for (int m = 0; m < merges; ++m)
    emu::run_cta(dim3(m), kDecodeMergeThreads, kDecodeMergeSmemBytes, [&p, m] {
      decode_merge_cta<typename Traits::Element>(p, m, static_cast<int>(threadIdx.x), kDecodeMergeThreads);
    });
}

template <int kD>
void run_d(const DecodeProblem& p, const DecodeParams& k, int grid, int merges) {
  const int rw = decode_row_warps(p);
  if (p.cache.dtype == DType::bf16) {
    if (rw == 1) run_grid<DecodeTraits<__nv_bfloat16, kD, 1>>(k, grid, merges);
    else run_grid<DecodeTraits<__nv_bfloat16, kD, 4>>(k, grid, merges);
  } else {
    if (rw == 1) run_grid<DecodeTraits<__half, kD, 1>>(k, grid, merges);
    else run_grid<DecodeTraits<__half, kD, 4>>(k, grid, merges);
  }
}

}  // namespace

DecodeSchedule emulate_decode(const DecodeProblem& p, int resident_ctas) {
  const DecodeTuning t = decode_tuning(static_cast<int>(p.d));
  DecodePlanShape shape;
  shape.block_n = t.block_n;
  shape.rows_per_cta = 16 * decode_row_warps(p);
  shape.resident_ctas = resident_ctas;
  shape.min_tiles_per_cta = kDecodeMinTilesPerCta;
  const DecodePlan plan = plan_decode(decode_segments(p, shape.block_n, shape.rows_per_cta), p.config, shape);
  DecodeParams k = make_decode_params(p);
  std::vector<float> partial_o(static_cast<size_t>(plan.num_partials) * shape.rows_per_cta * p.dv + 1, NAN);
  std::vector<float> partial_lse(static_cast<size_t>(plan.num_partials) * shape.rows_per_cta + 1, NAN);
  k.segments = plan.segments.data();
  k.items = plan.items.data();
  k.cta_items = plan.cta_items.data();
  k.merges = plan.merges.data();
  k.partial_o = partial_o.data();
  k.partial_lse = partial_lse.data();
  const int merges = static_cast<int>(plan.merges.size());
  switch (p.d) {
    case 64: run_d<64>(p, k, plan.grid(), merges); break;
    case 128: run_d<128>(p, k, plan.grid(), merges); break;
    default: run_d<256>(p, k, plan.grid(), merges); break;
  }
  return plan.schedule;
}

}  // namespace omniattn::detail::cuda
