#pragma once
// Host emulation of the CUDA decode (src/cuda/decode) on host tensors: plan, every CTA as 128 fibers, merge.
#include "decode/decode_problem.hpp"

namespace omniattn::detail::cuda {
/// Runs the decode kernels' code on the CPU; `resident_ctas` stands for SMs x occupancy; `item_lookahead` and `bulk_kv`
/// as DecodeParams'. Returns the schedule used.
DecodeSchedule emulate_decode(const DecodeProblem& p, int resident_ctas, int item_lookahead = 1,
                              bool bulk_kv = false);
}
