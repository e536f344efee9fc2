#pragma once
// Epilogue of a consumer warpgroup of the sm_90a forward: normalize O (the denominator includes the sink
// logit, if any), write LSE (f32) and O straight from registers -- each quad of lanes writes 16 contiguous
// bytes of a row -- so that no shared memory is held and the producer may already load the next tile's Q.
#include "cuda/common/online_softmax.cuh"
#include "cuda/flash/fwd_scheduler.cuh"
#include "cuda/flash/sm90_params.hpp"
#include "cuda/flash/sm90_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90Epilogue {
  using Element = typename Traits::Element;
  using OAcc = typename Traits::OAcc;

  static __device__ __forceinline__ void store(const Sm90Params& p, const CtaWork& w, int consumer, OAcc& o,
                                               const OnlineSoftmax<2>& softmax) {
    const int thread = static_cast<int>(threadIdx.x) % 128, warp = thread / 32, lane = thread % 32;
    const int head = w.head_block;  // one query head per tile
    constexpr float kLog2e = 1.4426950408889634f;
    const float sink_log2 = p.base.sink_logits ? p.base.sink_logits[head] * kLog2e : -INFINITY;

    float factor[2], lse[2];
    int rows[2];  // query token of each row slot
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      factor[r] = softmax.finalize(r, p.base.mult_log2, sink_log2, lse[r]);
      rows[r] = w.row0 + 64 * consumer + 16 * warp + OAcc::row_of_slot(r, lane);
    }
    o.scale_rows(factor);

    if (p.base.lse != nullptr && (lane & 3) == 0) {  // one lane of each quad owns the row's LSE
#pragma unroll
      for (int r = 0; r < 2; ++r)
        if (rows[r] < w.rows)
          p.base.lse[w.batch * p.base.lse_batch + head * p.base.lse_head + (w.seq.q_begin + rows[r]) * p.base.lse_token] =
              lse[r];
    }

    Element* out = static_cast<Element*>(p.base.out) + w.batch * p.base.o_batch + head * p.base.o_head;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if (rows[r] >= w.rows) continue;
      Element* row = out + (w.seq.q_begin + rows[r]) * p.base.o_token;
#pragma unroll
      for (int n = 0; n < OAcc::kN; ++n)
        *reinterpret_cast<uint32_t*>(row + OAcc::col_of(n, 0, lane)) =
            pack_pair<Element>(o.v[0][n][2 * r], o.v[0][n][2 * r + 1]);
    }
  }
};

}  // namespace omniattn::detail::cuda
