// The sm_80 backward kernel code compiled for the host emulation (src/cuda/common/emulation.hpp): every CTA of
// each grid runs as cooperative fibers, CTAs one after another in CUDA's dispatch order (blockIdx.x fastest),
// which is the order the deterministic mode's semaphores rely on. No CUDA header may be included here.
#define OMNIATTN_CUDA_EMULATION 1
#include "gpu/emulator/emulated_bwd_kernels.hpp"

#include <cstddef>
#include <iterator>

#include "cuda/bwd/bwd_cta.cuh"

namespace omniattn::detail::cuda {
namespace {

template <class Body>
void emulate_grid(dim3 grid, int threads, size_t smem, Body body) {
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) emu::run_cta(dim3(x, y, z), threads, smem, body);
}

template <class Element, int kD, int kDv>
void emulate(const BwdParams& p) {
  using Traits = BwdTraits<Element, kD, kDv>;
  constexpr int kThreads = Traits::kThreads;
  if (p.m_blocks > 0)
    emulate_grid(BwdRowScheduler::grid(p), kThreads, kPreSmemBytes<Traits>, [&p] { bwd_preprocess_cta<Traits>(p); });
  if (p.n_blocks > 0)
    emulate_grid(BwdKvScheduler::grid(p), kThreads, Traits::kSmemBytes, [&p] { bwd_main_cta<Traits>(p); });
  if (p.m_blocks > 0)
    emulate_grid(BwdRowScheduler::grid(p), kThreads, 16, [&p] { bwd_postprocess_cta<Traits>(p); });
  if (p.split_tile_count > 0)
    emulate_grid(BwdSplitStoreScheduler::grid(p), kThreads, 16, [&p] { bwd_split_store_cta<Traits>(p); });
  if (p.dsink != nullptr) emulate_grid(dim3(1), kThreads, 16, [&p] { bwd_dsink_cta<Traits>(p); });
}

template <std::size_t kRow>
bool dispatch(DType dtype, int d, int dv, const BwdParams& p) {
  if constexpr (kRow == std::size(kBwdTuningTable)) {
    return false;
  } else {
    constexpr BwdTuning t = kBwdTuningTable[kRow];
    if (t.d != d || t.dv != dv) return dispatch<kRow + 1>(dtype, d, dv, p);
    if (dtype == DType::bf16)
      emulate<__nv_bfloat16, t.d, t.dv>(p);
    else
      emulate<__half, t.d, t.dv>(p);
    return true;
  }
}

}  // namespace

bool emulate_bwd_sm80(DType dtype, int d, int dv, const BwdParams& p) { return dispatch<0>(dtype, d, dv, p); }

}  // namespace omniattn::detail::cuda
