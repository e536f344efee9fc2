#pragma once
// The oracle of decoding: K/V gathered out of the pages into contiguous tensors, then the float64 reference
// of attention_forward (or its same-precision naive twin, whose error sets the tests' tolerances).
#include "decode/decode_problem.hpp"

namespace omniattn::detail::reference {

/// Backend::reference of attention_decode (CPU caches). `lowp`: reference::forward_lowp instead.
void decode(const DecodeProblem& p, bool lowp = false);

}  // namespace omniattn::detail::reference
