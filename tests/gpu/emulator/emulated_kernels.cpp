// The sm_80 forward kernel code compiled for the host emulation (src/cuda/common/emulation.hpp): every CTA of
// the grid runs as 128 cooperative fibers. No CUDA header may be included in this translation unit.
#define OMNIATTN_CUDA_EMULATION 1
#include "gpu/emulator/emulated_kernels.hpp"

#include <cstddef>
#include <iterator>

#include "cuda/flash/fwd_cta.cuh"

namespace omniattn::detail::cuda {
namespace {

template <class Element, int kD, int kDv>
void emulate_grid(const FwdParams& p) {
  using Traits = FwdTraits<Element, kD, kDv>;
  const dim3 grid = FwdScheduler::grid(p);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x)
        emu::run_cta(dim3(x, y, z), Traits::kThreads, Traits::kSmemBytes, [&p] {
          if (p.is_sparse())
            flash_fwd_sm80_cta<Traits, true>(p);  // the block-sparse kernel, as launch_fwd_sm80 picks it
          else
            flash_fwd_sm80_cta<Traits, false>(p);
        });
}

template <std::size_t kRow>
bool dispatch(DType dtype, int d, int dv, const FwdParams& p) {
  if constexpr (kRow == std::size(kFwdTuningTable)) {
    return false;
  } else {
    constexpr FwdTuning t = kFwdTuningTable[kRow];
    if (t.d != d || t.dv != dv) return dispatch<kRow + 1>(dtype, d, dv, p);
    if (dtype == DType::bf16)
      emulate_grid<__nv_bfloat16, t.d, t.dv>(p);
    else
      emulate_grid<__half, t.d, t.dv>(p);
    return true;
  }
}

}  // namespace

bool emulate_fwd_sm80(DType dtype, int d, int dv, const FwdParams& p) { return dispatch<0>(dtype, d, dv, p); }

}  // namespace omniattn::detail::cuda
