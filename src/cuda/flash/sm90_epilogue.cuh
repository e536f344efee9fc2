#pragma once
// Epilogue of a consumer warpgroup of the sm_90a forward: normalize O (the denominator includes the sink
// logit, if any), write LSE (f32) from registers, and O either
//  - through shared memory (o_through_smem): the warpgroup writes its (64 rows, kDv) block into 128-byte-swizzled
//    boxes, and one thread stores them with TMA (whole lines; rows past the sequence are clipped by the map). The
//    store runs on while the warpgroup starts its next tile; the buffer is reused after the store has read it.
//  - or straight from registers: each quad of lanes writes 16 contiguous bytes of a row.
// Neither holds Q's buffer: the producer may already load the next tile's Q.
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

  // Named barrier 1 + consumer: the warpgroup's own (the ping-pong turns use 1 + kConsumers ..).
  static __device__ __forceinline__ void sync_warpgroup(int consumer) { named_barrier_sync(1 + consumer, 128); }

  /// O of this warpgroup's 64 rows through shared memory and TMA stores (see the file comment).
  static __device__ __forceinline__ void store_through_smem(const Sm90Params& p, const CtaWork& w, int consumer,
                                                            const OAcc& o, uint8_t* smem) {
    const int thread = static_cast<int>(threadIdx.x) % 128, warp = thread / 32, lane = thread % 32;
    uint8_t* buffer = smem + Traits::kOOffset + consumer * Traits::kOConsumerBytes;  // kDv/64 boxes of (64, 64)
    if (thread == 0) bulk_wait_read();  // the previous tile's store has read the buffer
    sync_warpgroup(consumer);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = 16 * warp + OAcc::row_of_slot(r, lane);  // within the warpgroup's 64 rows
#pragma unroll
      for (int n = 0; n < OAcc::kN; ++n) {
        const int col = OAcc::col_of(n, 0, lane);
        *reinterpret_cast<uint32_t*>(buffer + col / 64 * Traits::kOBoxBytes + swizzled_offset(row, col % 64)) =
            pack_pair<Element>(o.v[0][n][2 * r], o.v[0][n][2 * r + 1]);
      }
    }
    fence_async_shared();  // the writes above, before the TMA unit reads them
    sync_warpgroup(consumer);
    if (thread == 0) {
      const bool own = p.seq_maps != nullptr;  // varlen: the sequence's own map (batch 0)
      const CUtensorMap* map = own ? &p.seq_maps[Sm90Params::kMapsPerSequence * w.batch + 3] : &p.o_map;
      const int head = w.head_block;  // one query head per tile
#pragma unroll
      for (int b = 0; b < Traits::kDv / 64; ++b)
        tma_store_4d(map, 64 * b, w.row0 + 64 * consumer, head, own ? 0 : w.batch, buffer + b * Traits::kOBoxBytes);
      bulk_commit();
    }
  }

  /// Before the CTA exits: every TMA store of O has completed.
  static __device__ __forceinline__ void drain() {
    if constexpr (Traits::kOThroughSmem)
      if (threadIdx.x % 128 == 0) bulk_wait_all();
  }

  static __device__ __forceinline__ void store(const Sm90Params& p, const CtaWork& w, int consumer, OAcc& o,
                                               const OnlineSoftmax<2>& softmax, uint8_t* smem) {
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

    if constexpr (Traits::kOThroughSmem) {
      if (p.o_by_tma) {
        store_through_smem(p, w, consumer, o, smem);
        return;
      }
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
