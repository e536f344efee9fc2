#pragma once
// Backward epilogue: the CTA's dK and dV accumulators (f32 registers) -> the input dtype, written to the tile's
// key rows that are stored (rows [k_len, k_stored) hold zeros: their keys were masked in every step, or the
// CTA had no step at all); a run of a split tile writes them in f32 to its slot instead (bwd_split_plan.hpp).
#include <cstdint>

#include "cuda/bwd/bwd_scheduler.cuh"
#include "cuda/bwd/bwd_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct BwdEpilogue {
  using Element = typename Traits::Element;

  /// Calls put(key, column, x0, x1) for every pair of adjacent columns of a warp's (kM*16 keys, kN*8 columns)
  /// accumulator at (key0, col0) of the tile, keys below `valid` only.
  template <class Acc, class Put>
  static __device__ __forceinline__ void for_each_pair(int valid, const Acc& a, int key0, int col0, int lane,
                                                       Put&& put) {
#pragma unroll
    for (int m = 0; m < Acc::kM; ++m)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int key = key0 + Acc::row_of_slot(2 * m + half, lane);
        if (key >= valid) continue;
#pragma unroll
        for (int n = 0; n < Acc::kN; ++n)
          put(key, col0 + Acc::col_of(n, 0, lane), a.v[m][n][2 * half], a.v[m][n][2 * half + 1]);
      }
  }

  /// The accumulator in the input dtype into `rows` (the tensor at the tile's first key, this KV head).
  template <class Acc>
  static __device__ __forceinline__ void store(Element* rows, int64_t token_stride, int valid, const Acc& a, int key0,
                                               int col0, int lane) {
    for_each_pair(valid, a, key0, col0, lane, [&](int key, int col, float x0, float x1) {
      *reinterpret_cast<uint32_t*>(rows + key * token_stride + col) = pack_pair<Element>(x0, x1);
    });
  }

  /// The accumulator in f32 into `rows` (`row_floats` floats apart): a split tile's run slot.
  template <class Acc>
  static __device__ __forceinline__ void store_f32(float* rows, int row_floats, int valid, const Acc& a, int key0,
                                                   int col0, int lane) {
    for_each_pair(valid, a, key0, col0, lane, [&](int key, int col, float x0, float x1) {
      *reinterpret_cast<float2*>(rows + key * row_floats + col) = make_float2(x0, x1);
    });
  }

  /// A warp's part of the CTA's dK and dV (accumulators at keys key0.., columns dk_col0.. / dv_col0..): to the
  /// tensors' stored key rows, or for a run of a split tile (BwdParams::units) to its f32 slot of dkv_partial.
  /// A dense kernel (kKind dense: never given a unit table) compiles no slot path.
  template <BwdWalkKind kKind = BwdWalkKind::any, class DkAcc, class DvAcc>
  static __device__ __forceinline__ void write(const BwdParams& p, const BwdKvWork& w, const DkAcc& dk,
                                               const DvAcc& dv, int key0, int dk_col0, int dv_col0, int lane) {
    const int valid = min(w.seq.k_stored - w.j0, p.tile_keys);  // a half-filled tile (p.tile_keys) writes its keys only
    const int slot = kKind != BwdWalkKind::dense && p.units != nullptr ? p.units[BwdKvScheduler::unit(p)].slot : -1;
    if (slot >= 0) {
      constexpr int kRow = Traits::kD + Traits::kDv;
      float* part = bwd_dkv_slot(p, slot, w.batch, w.kv_head, kRow);
      store_f32(part, kRow, valid, dk, key0, dk_col0, lane);
      store_f32(part + Traits::kD, kRow, valid, dv, key0, dv_col0, lane);
      return;
    }
    const int64_t token = w.seq.k_begin + w.j0;
    Element* dk_rows = static_cast<Element*>(p.dk) + w.batch * p.dk_batch + token * p.dk_token + w.kv_head * p.dk_head;
    Element* dv_rows = static_cast<Element*>(p.dv) + w.batch * p.dv_batch + token * p.dv_token + w.kv_head * p.dv_head;
    store(dk_rows, p.dk_token, valid, dk, key0, dk_col0, lane);
    store(dv_rows, p.dv_token, valid, dv, key0, dv_col0, lane);
  }

  static __device__ __forceinline__ void run(const BwdParams& p, const BwdKvWork& w, const typename Traits::DkAcc& dk,
                                             const typename Traits::DvAcc& dv) {
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int key0 = (warp % Traits::kDkvWarpsN) * Traits::kDkvKeys;
    const int cols = warp / Traits::kDkvWarpsN;
    write(p, w, dk, dv, key0, cols * Traits::kDkCols, cols * Traits::kDvCols, lane);
  }
};

}  // namespace omniattn::detail::cuda
