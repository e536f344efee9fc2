#pragma once
// Host emulation of the sm_80 backward launch (emulated_bwd_kernels.cpp); params hold host pointers.
#include "cuda/bwd/bwd_params.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {
/// Runs preprocess, main, postprocess and d(sink) grids of (dtype, d, dv) in CUDA's dispatch order; false when
/// the pair has no row in the tuning table.
bool emulate_bwd_sm80(DType dtype, int d, int dv, const BwdParams& p);
}
