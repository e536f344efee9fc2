#pragma once
// The one runtime -> template conversion of a kernel family: walks a tuning table (rows with .d and .dv) at
// compile time and calls f.template operator()<Element, kD, kDv>() for the row matching (d, dv) and the 16-bit
// dtype. Every row is thus dispatched, so every row must be instantiated (a missing instantiation file is a link
// error, not a silent refusal).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <iterator>

#include "omniattn/tensor.hpp"

namespace omniattn::detail::cuda {

/// False when no row matches (d, dv) or the dtype is not bf16 / f16 (can_run refuses those first).
template <const auto& kTable, std::size_t kRow = 0, class F>
bool dispatch_head_dims(DType dtype, int d, int dv, F&& f) {
  if constexpr (kRow == std::size(kTable)) {
    return false;
  } else {
    constexpr auto t = kTable[kRow];
    if (t.d != d || t.dv != dv) return dispatch_head_dims<kTable, kRow + 1>(dtype, d, dv, f);
    if (dtype == DType::bf16) {
      f.template operator()<__nv_bfloat16, t.d, t.dv>();
      return true;
    }
    if (dtype == DType::f16) {
      f.template operator()<__half, t.d, t.dv>();
      return true;
    }
    return false;
  }
}

}  // namespace omniattn::detail::cuda
