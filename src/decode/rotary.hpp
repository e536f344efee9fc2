#pragma once
// Rotary embedding of one pair of a head vector, shared by the CPU and CUDA appends (kv_cache.hpp: Rotary).
#include <cstdint>
#include <utility>

#include "core/mask_policy.hpp"  // OMNI_HD

namespace omniattn::detail {

/// Dims rotated together as pair i of `rotary_dim`: (i, i + rotary_dim/2) half-split, (2i, 2i+1) interleaved.
struct RotaryPair {
  int64_t first, second;
};
OMNI_HD RotaryPair rotary_pair(int64_t i, int64_t rotary_dim, bool interleaved) {
  return interleaved ? RotaryPair{2 * i, 2 * i + 1} : RotaryPair{i, i + rotary_dim / 2};
}
/// (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos).
struct Rotated {
  float y0, y1;
};
OMNI_HD Rotated rotate(float x0, float x1, float cos, float sin) { return {x0 * cos - x1 * sin, x0 * sin + x1 * cos}; }

}  // namespace omniattn::detail
