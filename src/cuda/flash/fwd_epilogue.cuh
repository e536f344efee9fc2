#pragma once
// Forward epilogue: normalize O by the softmax denominator (which includes the sink logit, if any), write
// LSE, and store O through shared memory so that global stores are whole 16-byte chunks of rows.
#include "cuda/common/online_softmax.cuh"
#include "cuda/flash/fwd_scheduler.cuh"
#include "cuda/flash/fwd_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct FwdEpilogue {
  using Element = typename Traits::Element;
  using OTile = typename Traits::OTile;
  using OAcc = typename Traits::OAcc;
  static constexpr int kRowSlots = Traits::kRowSlots;
  static constexpr int kWarpRows = Traits::kWarpRows;

  static __device__ __forceinline__ void store(const FwdParams& p, const CtaWork& w, uint8_t* smem, OAcc& o,
                                               const OnlineSoftmax<kRowSlots>& softmax) {
    const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
    const int warp_row0 = warp * kWarpRows;
    constexpr float kLog2e = 1.4426950408889634f;

    // Normalize and compute LSE, per row slot.
    float factor[kRowSlots], lse[kRowSlots];
    int rows[kRowSlots];  // packed query row of each slot
#pragma unroll
    for (int r = 0; r < kRowSlots; ++r) {
      rows[r] = w.row0 + warp_row0 + OAcc::row_of_slot(r, lane);
      const int head = w.head_block * p.pack + rows[r] % p.pack;
      const float sink_log2 = p.sink_logits ? p.sink_logits[head] * kLog2e : -INFINITY;
      factor[r] = softmax.finalize(r, p.mult_log2, sink_log2, lse[r]);
    }
    o.scale_rows(factor);

    if (p.lse != nullptr && (lane & 3) == 0) {  // one lane of each quad owns the row's LSE
#pragma unroll
      for (int r = 0; r < kRowSlots; ++r) {
        if (rows[r] >= w.rows) continue;
        const int token = rows[r] / p.pack, head = w.head_block * p.pack + rows[r] % p.pack;
        p.lse[w.batch * p.lse_batch + head * p.lse_head + (w.seq.q_begin + token) * p.lse_token] = lse[r];
      }
    }

    // Stage this warp's rows in the Q tile's shared memory. The barrier makes sure no cp.async into Q is still
    // in flight (a CTA with no KV tile never waited for its Q load) and that no warp still reads Q.
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int m = 0; m < OAcc::kM; ++m)
#pragma unroll
      for (int n = 0; n < OAcc::kN; ++n)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int row = warp_row0 + 16 * m + (lane >> 2) + 8 * half;
          const int col = OAcc::col_of(n, 0, lane);
          *reinterpret_cast<uint32_t*>(smem + OTile::offset(row, col)) =
              pack_pair<Element>(o.v[m][n][2 * half], o.v[m][n][2 * half + 1]);
        }
    __syncwarp();

    // (kWarpRows, kDv) of this warp, as 16-byte chunks: consecutive lanes take consecutive chunks of a row.
    constexpr int kChunks = kWarpRows * OTile::kChunksPerRow;
    static_assert(kChunks % 32 == 0, "every lane stores the same number of chunks");
    Element* out = static_cast<Element*>(p.out) + w.batch * p.o_batch;
#pragma unroll
    for (int i = 0; i < kChunks / 32; ++i) {
      const int chunk = lane + 32 * i;
      const int r = chunk / OTile::kChunksPerRow, c = (chunk % OTile::kChunksPerRow) * 8;
      const int row = w.row0 + warp_row0 + r;
      if (row >= w.rows) continue;
      const int token = row / p.pack, head = w.head_block * p.pack + row % p.pack;
      const uint4 value = *reinterpret_cast<const uint4*>(smem + OTile::offset(warp_row0 + r, c));
      *reinterpret_cast<uint4*>(out + (w.seq.q_begin + token) * p.o_token + head * p.o_head + c) = value;
    }
  }
};

}  // namespace omniattn::detail::cuda
