#pragma once
// Backward epilogue: the CTA's dK and dV accumulators (f32 registers) -> the input dtype, written to the tile's
// key rows that are stored (rows [k_len, k_stored) hold zeros: their keys were masked in every step, or the
// CTA had no step at all).
#include <cstdint>

#include "cuda/bwd/bwd_scheduler.cuh"
#include "cuda/bwd/bwd_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct BwdEpilogue {
  using Element = typename Traits::Element;

  /// Writes a warp's (kM*16 keys, kN*8 columns) accumulator at (key0, col0) of the tile into `rows` (the
  /// tensor at the tile's first key, this KV head), keys below `valid` only.
  template <class Acc>
  static __device__ __forceinline__ void store(Element* rows, int64_t token_stride, int valid, const Acc& a, int key0,
                                               int col0, int lane) {
#pragma unroll
    for (int m = 0; m < Acc::kM; ++m)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int key = key0 + Acc::row_of_slot(2 * m + half, lane);
        if (key >= valid) continue;
#pragma unroll
        for (int n = 0; n < Acc::kN; ++n)
          *reinterpret_cast<uint32_t*>(rows + key * token_stride + col0 + Acc::col_of(n, 0, lane)) =
              pack_pair<Element>(a.v[m][n][2 * half], a.v[m][n][2 * half + 1]);
      }
  }

  static __device__ __forceinline__ void run(const BwdParams& p, const BwdKvWork& w, const typename Traits::DkAcc& dk,
                                             const typename Traits::DvAcc& dv) {
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int key0 = (warp % Traits::kDkvWarpsN) * Traits::kDkvKeys;
    const int cols = warp / Traits::kDkvWarpsN;
    const int valid = min(w.seq.k_stored - w.j0, p.tile_keys);  // a half-filled tile (p.tile_keys) writes its keys only
    const int64_t token = w.seq.k_begin + w.j0;
    Element* dk_rows = static_cast<Element*>(p.dk) + w.batch * p.dk_batch + token * p.dk_token + w.kv_head * p.dk_head;
    Element* dv_rows = static_cast<Element*>(p.dv) + w.batch * p.dv_batch + token * p.dv_token + w.kv_head * p.dv_head;
    store(dk_rows, p.dk_token, valid, dk, key0, cols * Traits::kDkCols, lane);
    store(dv_rows, p.dv_token, valid, dv, key0, cols * Traits::kDvCols, lane);
  }
};

}  // namespace omniattn::detail::cuda
