#pragma once
// Entry points of the fast CPU kernels. Each runs on all OpenMP threads and dispatches at run time to
// the best SIMD target Highway compiled and the CPU supports (AVX-512, AVX2, or scalar).
#include <string>

#include "core/problem.hpp"

namespace omniattn::detail::cpu {

/// Tiled online-softmax forward (FlashAttention), every option of ForwardProblem; dtype f32/bf16/f16.
void forward(const ForwardProblem& p);
/// Deterministic two-pass backward (dK/dV per key block, then dQ per query block); dtype f32/bf16/f16.
void backward(const BackwardProblem& p);
/// Name of the SIMD target the kernels run on here ("AVX3", "AVX2", "SCALAR", ...).
std::string simd_target();

}  // namespace omniattn::detail::cpu
