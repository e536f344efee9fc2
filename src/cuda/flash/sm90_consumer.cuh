#pragma once
// A consumer warpgroup of the sm_90a forward: 64 query rows (16 per warp). Per KV tile j:
//   S_j = Q K_j^T (wgmma, Q and K from shared memory)  ->  logits (ScoreMod, only with softcap / ALiBi)
//   ->  mask (boundary tiles only)  ->  online softmax  ->  O += P_j V_j (wgmma, P from registers, V read
//   transposed from shared memory).
// Software pipelined inside the warpgroup (FlashAttention-3): step j issues S_j = Q K_j^T and O += P_{j-1} V_{j-1}
// back to back, waits only for S_j, and runs the softmax of tile j while the tensor cores still compute
// P_{j-1} V_{j-1}; O is rescaled once that GEMM has landed.
// With kPingpong the consumers also take turns (named barriers): a warpgroup issues its GEMMs only after
// the previous one has issued its own, so one's softmax overlaps another's GEMMs.
// Block-sparse calls: the tile's KV count and each KV tile (first key, partial block or not) come from the
// producer through shared memory; partial blocks also run the element mask on the scores.
#include "core/mask_policy.hpp"
#include "cuda/common/online_softmax.cuh"
#include "cuda/common/warpgroup.cuh"
#include "cuda/flash/fwd_score_mask.cuh"
#include "cuda/flash/sm90_params.hpp"
#include "cuda/flash/sm90_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90Consumer {
  using Element = typename Traits::Element;
  using SAcc = typename Traits::SAcc;
  using OAcc = typename Traits::OAcc;
  static constexpr int kStages = Traits::kStages;
  static constexpr int kBlockN = Traits::kBlockN;
  static constexpr int kConsumers = Traits::kConsumers;
  static constexpr int kSRegs = kBlockN / 2;
  static constexpr int kORegs = Traits::kDv / 2;
  static constexpr int kPRegs = kBlockN / 4;
  static constexpr int kTurnBarrier0 = 1 + kConsumers;  // named barriers 1..kConsumers serve the epilogue
  using PFrag = uint32_t[kBlockN / 16][4];               // (16 rows, kBlockN) of P in Element, A fragments

  /// Issues S = Q K^T for this warpgroup's 64 rows: kD/16 wgmma m64 n kBlockN k16, both operands K-major.
  static __device__ __forceinline__ void issue_qk(SAcc& s, uint32_t q_rows, uint32_t k_tile) {
    float* acc = &s.v[0][0][0];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < Traits::kD / 16; ++kk) {
      const uint32_t column = (kk % 4) * 32;  // bytes of the 16-element slice within its 64-column box
      const uint64_t a = kmajor_descriptor(q_rows + (kk / 4) * Traits::kQBoxBytes + column);
      const uint64_t b = kmajor_descriptor(k_tile + (kk / 4) * Traits::kKvBoxBytes + column);
      WgmmaSS<Element, kBlockN>::run(acc, a, b, kk > 0);
    }
    wgmma_commit();
    fence_registers<kSRegs>(acc);
  }

  /// Issues O += P V: kBlockN/16 wgmma m64 n kDv k16.
  static __device__ __forceinline__ void issue_pv(OAcc& o, const PFrag& pa, uint32_t v_tile) {
    float* acc = &o.v[0][0][0];
    fence_registers<kORegs>(acc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)  // keys 16kk..: 16 rows of 128 bytes in every V box
      WgmmaRS<Element, Traits::kDv>::run(acc, pa[kk], mnmajor_descriptor(v_tile + kk * 16 * 128, Traits::kKvBoxBytes),
                                         1);
    wgmma_commit();
    fence_registers<kORegs>(acc);
  }


  // Ping-pong turns: consumer c issues after barrier kTurnBarrier0 + c, then hands the turn to c + 1.
  static __device__ __forceinline__ void wait_turn(int consumer) {
    if constexpr (Traits::kPingpong) named_barrier_sync(kTurnBarrier0 + consumer, 256);
  }
  static __device__ __forceinline__ void pass_turn(int consumer) {
    if constexpr (Traits::kPingpong) named_barrier_arrive(kTurnBarrier0 + (consumer + 1) % kConsumers, 256);
  }

  /// The index of the tile whose Q is in (call after q_full, before releasing Q), -1 when the schedule is over.
  /// Lane 0 reads and shuffles it: it is the lane that later releases Q (see kv_tile in run_tiles).
  static __device__ __forceinline__ int handed_tile(const Sm90Barriers<kStages>& bar) {
    int32_t t = 0;
    if (threadIdx.x % 32 == 0) t = *reinterpret_cast<const volatile int32_t*>(&bar.tile);
    return __shfl_sync(0xffffffffu, t, 0);
  }

  /// One tile whose Q has landed (q_full waited): every KV tile of `w` into `o` (unnormalized) and `softmax`.
  /// `kv_iter` is the position in the producer's K/V ring (advanced by the tile's KV count); Q is released to the
  /// producer after the last S = Q K^T.
  /// Block-sparse or dense: one copy of the loop each (a runtime branch per tile; the dense loop keeps its code).
  static __device__ __forceinline__ void run(const Sm90Params& p, const CtaWork& w, uint8_t* smem,
                                             Sm90Barriers<kStages>& bar, int consumer, int& kv_iter, OAcc& o,
                                             OnlineSoftmax<2>& softmax) {
    if constexpr (Traits::kBlockSparse) {
      if (p.base.is_sparse()) {
        run_tiles<true>(p, w, smem, bar, consumer, kv_iter, o, softmax);
        return;
      }
    }
    run_tiles<false>(p, w, smem, bar, consumer, kv_iter, o, softmax);
  }

  template <bool kSparse>
  static __device__ __forceinline__ void run_tiles(const Sm90Params& p, const CtaWork& w, uint8_t* smem,
                                                   Sm90Barriers<kStages>& bar, int consumer, int& kv_iter,
                                                   OAcc& o, OnlineSoftmax<2>& softmax) {
    const int thread = static_cast<int>(threadIdx.x) % 128, warp = thread / 32, lane = thread % 32;
    const int warp_row0 = 64 * consumer + 16 * warp;
    const uint32_t base = smem_address(smem);
    const uint32_t q_rows = base + Traits::kQOffset + 64 * consumer * 128;  // this warpgroup's 64 rows of each box
    const SequenceMask mask{w.seq.q_len, w.seq.k_len, p.base.window_left, p.base.window_right, p.base.sinks};
    auto k_tile = [&](int stage) { return base + Traits::kKOffset + stage * Traits::kKBytes; };
    auto v_tile = [&](int stage) { return base + Traits::kVOffset + stage * Traits::kVBytes; };
    // KV tile `it` of this tile, in `stage` (call after its k_full wait, before its k_empty arrival): the dense
    // range's, or under a block mask the producer's hand-off. Lane 0 alone reads the slot and shuffles it to the
    // warp: mbarrier.arrive releases only the arriving thread's own prior accesses, so the reader must be the lane
    // that later arrives on k_empty (all-lane reads + __syncwarp were flagged by racecheck as a hazard with the
    // producer's next write).
    auto kv_tile = [&](int it, int stage) {
      if constexpr (kSparse) {
        int32_t j0 = 0, partial = 0;
        if (lane == 0) {
          const volatile int32_t* slot = &bar.kv_tile[stage].j0;
          j0 = slot[0];
          partial = slot[1];
        }
        return Sm90KvTile{__shfl_sync(0xffffffffu, j0, 0), __shfl_sync(0xffffffffu, partial, 0)};
      } else {
        return Sm90KvTile{w.kv.block(it) * kBlockN, 0};
      }
    };
    // Element rule of a partial block's tile, evaluated before its GEMM is issued (S's registers are free).
    auto element_bits = [&](const Sm90KvTile& tile) {
      if constexpr (kSparse) {
        if (tile.partial) return TileScores<SAcc>::template element_bits<false>(p.base, w, warp_row0, tile.j0, lane);
      }
      return ~uint64_t{0};
    };
    auto softmax_step = [&](SAcc& s, const Sm90KvTile& tile, uint64_t visible, float (&rescale)[2]) {
      const int j0 = tile.j0;
      if (p.base.general_logits) TileScores<SAcc>::apply_score_mod(s, p.base, w, mask, warp_row0, j0, lane);
      if (mask.classify(w.t_first, w.t_end, j0, j0 + kBlockN) != SequenceMask::Tile::full)
        TileScores<SAcc>::apply_mask(s, p.base, w, mask, warp_row0, j0, lane);
      if (kSparse && tile.partial) TileScores<SAcc>::apply_element_bits(s, visible);
      softmax.update(s, p.base.mult_log2, rescale);
    };
    auto release_q = [&] {
      if (lane == 0) mbarrier_arrive(&bar.q_empty);
    };

    int count = w.kv.count;
    if constexpr (kSparse) {  // the producer's walk (written before q_full completed); read by lane 0, which
      // releases Q later (see kv_tile), and shuffled to the warp
      int32_t n = 0;
      if (lane == 0) n = *reinterpret_cast<const volatile int32_t*>(&bar.kv_count);
      count = __shfl_sync(0xffffffffu, n, 0);
    }
    if (count == 0) {
      release_q();
      wait_turn(consumer);  // one turn per tile even without GEMMs: the ring stays in step
      pass_turn(consumer);
      return;
    }

    SAcc s;  // (16 rows, kBlockN) f32 per warp
    PFrag pa;
    float rescale[2];
    // Tile 0: S_0 alone.
    {
      const int stage = kv_iter % kStages;
      mbarrier_wait(&bar.k_full[stage], (kv_iter / kStages) & 1);
      const Sm90KvTile tile = kv_tile(0, stage);
      const uint64_t visible = element_bits(tile);
      wait_turn(consumer);
      issue_qk(s, q_rows, k_tile(stage));
      pass_turn(consumer);
      wgmma_wait<0>();
      fence_registers<kSRegs>(&s.v[0][0][0]);
      if (lane == 0) mbarrier_arrive(&bar.k_empty[stage]);
      if (count == 1) release_q();
      softmax_step(s, tile, visible, rescale);  // O is still zero: no rescale
      acc_to_a_fragments<Element>(s, pa);
    }

    for (int it = 1; it < count; ++it) {
      const int g = kv_iter + it, stage = g % kStages, prev = (g - 1) % kStages;
      mbarrier_wait(&bar.k_full[stage], (g / kStages) & 1);
      mbarrier_wait(&bar.v_full[prev], ((g - 1) / kStages) & 1);
      const Sm90KvTile tile = kv_tile(it, stage);
      const uint64_t visible = element_bits(tile);
      wait_turn(consumer);
      issue_qk(s, q_rows, k_tile(stage));  // S_it
      issue_pv(o, pa, v_tile(prev));       // O += P_{it-1} V_{it-1}
      pass_turn(consumer);
      wgmma_wait<1>();  // S_it landed; P V still running
      fence_registers<kSRegs>(&s.v[0][0][0]);
      if (lane == 0) mbarrier_arrive(&bar.k_empty[stage]);
      if (it == count - 1) release_q();
      softmax_step(s, tile, visible, rescale);
      wgmma_wait<0>();
      hold_fragments(pa);
      fence_registers<kORegs>(&o.v[0][0][0]);
      if (lane == 0) mbarrier_arrive(&bar.v_empty[prev]);
      o.scale_rows(rescale);
      acc_to_a_fragments<Element>(s, pa);
    }

    // The last tile's P V.
    const int g = kv_iter + count - 1, last = g % kStages;
    mbarrier_wait(&bar.v_full[last], (g / kStages) & 1);
    wait_turn(consumer);
    issue_pv(o, pa, v_tile(last));
    pass_turn(consumer);
    wgmma_wait<0>();
    hold_fragments(pa);
    fence_registers<kORegs>(&o.v[0][0][0]);
    if (lane == 0) mbarrier_arrive(&bar.v_empty[last]);
    kv_iter += count;
  }
};

}  // namespace omniattn::detail::cuda
