#pragma once
#include <cstdint>

namespace omniattn::cli {

/// Number of fused multiply-adds per iteration and vector lane of fma_chains.
inline constexpr int64_t kFmaChains = 12;
/// Runs `iterations` x kFmaChains vector FMAs on the best SIMD target; returns the float lanes per vector.
int64_t fma_chains(int64_t iterations, float* sink);
/// Name of the SIMD target fma_chains runs on ("AVX3").
const char* fma_target_name();

}  // namespace omniattn::cli
