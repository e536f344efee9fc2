#pragma once
// Accuracy of a benchmarked block-sparse forward: sampled output rows against a float64 host computation that
// applies the mask pair by pair (the BlockMask's block map + its element rule, or the dense rows' rule).
#include <cstdint>
#include <functional>

namespace omniattn::bench {

/// bf16 device tensors [B, N, H, D] of one call (Sq = Sk = N, D = Dv).
struct CheckTensors {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* out = nullptr;
  int64_t batch = 1, n = 0, hq = 0, hkv = 0, d = 0;
};

/// visible(query head, query i, key j) of sequence-local positions (the same for every sequence).
using VisibleFn = std::function<bool(int64_t, int64_t, int64_t)>;

/// ||ours - ref|| / ||ref|| over `samples` pseudo-random (b, h, i) rows (fixed seed), ref in float64 with scale
/// 1/sqrt(D); a row with no visible key is 0. Copies the sampled heads of K and V to the host.
double sparse_rel_err(const CheckTensors& t, const VisibleFn& visible, int samples);

}  // namespace omniattn::bench
