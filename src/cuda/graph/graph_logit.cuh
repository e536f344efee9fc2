#pragma once
// The logit of one edge from its raw dot product q.k, as the CPU path computes it: scale * q.k, or with a softcap
// softcap * tanh(scale * q.k / softcap). Kernels keep logits in the log2 domain (exp2 on the SFU).
#include <cmath>

#include "cuda/graph/graph_params.hpp"
#include "cuda/graph/graph_vector.cuh"

namespace omniattn::detail::cuda::graph {

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

/// logit * log2(e).
__device__ __forceinline__ float logit_log2(const LogitRule& r, float dot) {
  if (r.softcap > 0.0f) return r.softcap * tanhf(dot * r.scale / r.softcap) * kLog2e;
  return dot * r.scale_log2;
}

/// logit * log2(e), and `slope` = d logit / d (q.k) (natural units): scale, times 1 - tanh^2 under a softcap.
__device__ __forceinline__ float logit_log2(const LogitRule& r, float dot, float& slope) {
  if (r.softcap > 0.0f) {
    const float t = tanhf(dot * r.scale / r.softcap);
    slope = r.scale * (1.0f - t * t);
    return r.softcap * t * kLog2e;
  }
  slope = r.scale;
  return dot * r.scale_log2;
}

}  // namespace omniattn::detail::cuda::graph
