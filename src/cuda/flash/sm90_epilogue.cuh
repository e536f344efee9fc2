#pragma once
// Epilogue of a consumer warpgroup of the sm_90a forward: normalize O (the denominator includes the sink
// logit, if any), write LSE (f32), stage O in this warpgroup's rows of the Q tile (128-byte swizzled, the
// layout the O tensor map expects) and store it with TMA; rows past the sequence are clipped by the map.
#include "cuda/common/online_softmax.cuh"
#include "cuda/common/warpgroup.cuh"
#include "cuda/flash/fwd_scheduler.cuh"
#include "cuda/flash/sm90_params.hpp"
#include "cuda/flash/sm90_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90Epilogue {
  using Element = typename Traits::Element;
  using OAcc = typename Traits::OAcc;

  static __device__ __forceinline__ void store(const Sm90Params& p, const CtaWork& w, uint8_t* smem, int consumer,
                                               OAcc& o, const OnlineSoftmax<2>& softmax) {
    const int thread = static_cast<int>(threadIdx.x) % 128, warp = thread / 32, lane = thread % 32;
    const int head = w.head_block;  // one query head per tile
    constexpr float kLog2e = 1.4426950408889634f;
    const float sink_log2 = p.base.sink_logits ? p.base.sink_logits[head] * kLog2e : -INFINITY;

    float factor[2], lse[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) factor[r] = softmax.finalize(r, p.base.mult_log2, sink_log2, lse[r]);
    o.scale_rows(factor);

    if (p.base.lse != nullptr && (lane & 3) == 0) {  // one lane of each quad owns the row's LSE
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = w.row0 + 64 * consumer + 16 * warp + OAcc::row_of_slot(r, lane);
        if (row < w.rows) p.base.lse[w.batch * p.base.lse_batch + head * p.base.lse_head + row * p.base.lse_token] = lse[r];
      }
    }

    // Every warp of this warpgroup is past its last wgmma reading Q before Q's rows are overwritten.
    named_barrier_sync(1 + consumer, 128);
    uint8_t* rows = smem + Traits::kQOffset + 64 * consumer * 128;  // this warpgroup's 64 rows of each Q box
#pragma unroll
    for (int n = 0; n < OAcc::kN; ++n)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = 16 * warp + (lane >> 2) + 8 * half, col = 8 * (n % 8) + 2 * (lane & 3);
        *reinterpret_cast<uint32_t*>(rows + (n / 8) * Traits::kQBoxBytes + swizzled_offset(row, col)) =
            pack_pair<Element>(o.v[0][n][2 * half], o.v[0][n][2 * half + 1]);
      }
    ::cuda::ptx::fence_proxy_async(::cuda::ptx::space_shared);  // ordinary stores -> visible to the TMA engine
    named_barrier_sync(1 + consumer, 128);
    if (thread == 0) {
#pragma unroll
      for (int b = 0; b < Traits::kDv / 64; ++b)
        tma_store_4d(&p.o_map, 64 * b, w.row0 + 64 * consumer, head, w.batch, rows + b * Traits::kQBoxBytes);
      ::cuda::ptx::cp_async_bulk_commit_group();
      ::cuda::ptx::cp_async_bulk_wait_group_read(::cuda::ptx::n32_t<0>{});  // shared memory read before exit
    }
  }
};

}  // namespace omniattn::detail::cuda
