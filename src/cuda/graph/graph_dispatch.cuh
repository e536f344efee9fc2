#pragma once
// Runtime -> template conversion of the graph kernels: element type from the dtype, vectors per lane from the lane
// geometry, query heads per warp from the caller's choice. The only place these become template arguments.
#if !defined(OMNIATTN_CUDA_EMULATION)  // the emulation names its own 16-bit types
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#include "cuda/graph/graph_config.hpp"
#include "cuda/graph/graph_traits.cuh"
#include "omniattn/error.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda::graph {

/// Calls f.template operator()<GraphTraits<Element, kVec, kHeads>>() for the runtime values; `heads` is 1, 2 or
/// kMaxHeads (heads_per_warp). f32 rows may take two vectors per lane; 16-bit rows always one.
template <int kMaxHeads, class F>
void with_traits(DType dtype, const LaneGeometry& lanes, int heads, F&& f) {
  auto by_heads = [&]<class Element, int kVec>() {
    if constexpr (kMaxHeads == 1) {
      f.template operator()<GraphTraits<Element, kVec, 1>>();
    } else {
      if (heads == 1) f.template operator()<GraphTraits<Element, kVec, 1>>();
      else if (heads == 2) f.template operator()<GraphTraits<Element, kVec, 2>>();
      else if constexpr (kMaxHeads > 2) f.template operator()<GraphTraits<Element, kVec, kMaxHeads>>();
    }
  };
  const int vec = vectors_per_lane(lanes);
  switch (dtype) {
    case DType::bf16: by_heads.template operator()<__nv_bfloat16, 1>(); break;
    case DType::f16: by_heads.template operator()<__half, 1>(); break;
    case DType::f32:
      if (vec == 1) by_heads.template operator()<float, 1>();
      else by_heads.template operator()<float, 2>();
      break;
    default: throw Error("q", "dtype bf16, f16 or f32 (graph attention on CUDA)", to_string(dtype));
  }
}

inline unsigned ctas_for(int64_t warps) { return static_cast<unsigned>((warps + kWarpsPerCta - 1) / kWarpsPerCta); }

}  // namespace omniattn::detail::cuda::graph
