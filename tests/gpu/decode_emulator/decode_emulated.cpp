// The CUDA decode kernels' code compiled for the host emulation (src/cuda/common/emulation.hpp). No CUDA header
// may be included in this translation unit.
#define OMNIATTN_CUDA_EMULATION 1
#include "gpu/decode_emulator/decode_emulated.hpp"

#include "cuda/decode/decode_config.hpp"
#include "cuda/decode/decode_cta.cuh"
#include "cuda/decode/decode_params_fill.hpp"
#include "decode/decode_plan.hpp"

namespace omniattn::detail::cuda {
namespace {

template <class Traits>
void run_grid(const DecodeParams& p, int grid) {
  // CTAs in reverse order: a segment's last partial is then written by its first CTA, not its last.
  for (int c = grid - 1; c >= 0; --c)
    emu::run_cta(dim3(c), Traits::kThreads, Traits::kSmemBytes, [&p, c] { decode_cta<Traits>(p, c); });
}

template <int kD>
void run_d(const DecodeProblem& p, const DecodeParams& k, int grid) {
  const int rw = decode_row_warps(p);
  if (p.cache.dtype == DType::bf16) {
    if (rw == 1) run_grid<DecodeTraits<__nv_bfloat16, kD, 1>>(k, grid);
    else run_grid<DecodeTraits<__nv_bfloat16, kD, 4>>(k, grid);
  } else {
    if (rw == 1) run_grid<DecodeTraits<__half, kD, 1>>(k, grid);
    else run_grid<DecodeTraits<__half, kD, 4>>(k, grid);
  }
}

}  // namespace

DecodeSchedule emulate_decode(const DecodeProblem& p, int resident_ctas, int item_lookahead, bool bulk_kv) {
  const DecodeTuning t = decode_tuning(static_cast<int>(p.d));
  DecodePlanShape shape;
  shape.block_n = t.block_n;
  shape.rows_per_cta = 16 * decode_row_warps(p);
  shape.resident_ctas = resident_ctas;
  shape.min_tiles_per_cta = kDecodeMinTilesPerCta;
  const DecodePlan plan = plan_decode(decode_segments(p, shape.block_n, shape.rows_per_cta), p.config, shape);
  DecodeParams k = make_decode_params(p);
  k.item_lookahead = item_lookahead;
  k.bulk_kv = bulk_kv;
  std::vector<float> partial_o(static_cast<size_t>(plan.num_partials) * shape.rows_per_cta * p.dv + 1, NAN);
  std::vector<float> partial_lse(static_cast<size_t>(plan.num_partials) * shape.rows_per_cta + 1, NAN);
  k.segments = plan.segments.data();
  k.items = plan.items.data();
  k.cta_items = plan.cta_items.data();
  k.merges = plan.merges.data();
  k.partial_o = partial_o.data();
  k.partial_lse = partial_lse.data();
  std::vector<int32_t> counters(plan.merges.size() + 1, 0);
  k.merge_counters = counters.data();
  switch (p.d) {
    case 64: run_d<64>(p, k, plan.grid()); break;
    case 128: run_d<128>(p, k, plan.grid()); break;
    default: run_d<256>(p, k, plan.grid()); break;
  }
  for (int32_t c : counters)
    if (c != 0) std::abort();  // every merge ran and left its counter at zero
  return plan.schedule;
}

}  // namespace omniattn::detail::cuda
