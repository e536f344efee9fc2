#pragma once
// Compile-time shape of a graph kernel: element type, 16-byte vectors per lane per row, query heads per warp.
#include "cuda/graph/graph_config.hpp"
#include "cuda/graph/graph_vector.cuh"

namespace omniattn::detail::cuda::graph {

template <class Element_, int kVec_, int kHeads_>
struct GraphTraits {
  using Element = Element_;
  static constexpr int kVec = kVec_;      // 16-byte vectors of a row per lane (1, or 2 for long f32 rows)
  static constexpr int kHeads = kHeads_;  // query heads per warp (1 for the dK/dV pass: it loops over them)
  static constexpr int kElems = kElemsPerVector<Element>;
  static constexpr int kRow = kVec * kElems;  // floats of one row per lane
  static constexpr int kSteps = kEdgesPerGroup;
  static_assert(kVec == 1 || kVec == 2, "rows of at most 64 vectors (D <= 256 in f32)");
};

}  // namespace omniattn::detail::cuda::graph
