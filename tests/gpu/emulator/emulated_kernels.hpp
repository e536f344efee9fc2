#pragma once
// Host emulation of the sm_80 forward launch (emulated_kernels.cpp); params hold host pointers.
#include "cuda/flash/fwd_params.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {
bool emulate_fwd_sm80(DType dtype, int d, int dv, const FwdParams& p);
}
