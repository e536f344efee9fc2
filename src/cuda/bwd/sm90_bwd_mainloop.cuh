#pragma once
// The sm_90a backward mainloop of the two consumer warpgroups of a CTA: the sm_80 mainloop's steps (BwdWalk:
// every query head of the group x every query tile that sees the KV tile, or the tiles a block mask lists)
// with warpgroup GEMMs. Consumer warpgroup w owns keys [64w, 64w + 64) of the tile; per step:
//   wait full[stage] (the TMA loads of Q, dO, LSE, D)
//   S^T_w = K_w Q^T, dP^T_w = V_w dO^T      wgmma m64 n64 (A, B K-major from shared memory), (64 keys, 64 rows)
//   P^T, dS^T                                 registers (plain logits here; softcap / ALiBi: the sm_80 code)
//   dS^T_w -> shared memory (swizzled, buffer step % 2)   for dQ, which needs every key
//   dV_w += P^T_w dO, dK_w += dS^T_w Q        wgmma m64 n kDv / kD, A from registers (P^T, dS^T), B MN-major
//   named barrier (both halves of dS^T; kD = 64: the warpgroup's own half)
//   dQ[:, w kD/2 ..] = dS K[:, w kD/2 ..]     wgmma m64 n64, A = dS (dS^T read MN-major), B = K MN-major
//     (kD = 64: dQ_w = dS_w K_w over the warpgroup's own keys, two partial sums)
//   release the stage (empty[stage]); dQ (f32) -> the staging buffer, handed to the dQ writer warp
//     (sm90_bwd_dq_writer.cuh), which adds it into the workspace with bulk reductions
// No CTA-wide barrier per step: the loader runs kStages - 1 steps ahead, the writer up to one step behind.
// cp.async and st.shared are generic-proxy writes that wgmma (async proxy) reads: each st.shared writer fences
// (fence.proxy.async) before the barrier that publishes its stores; for the loaders' cp.async of K and V every
// consumer thread fences after the mbarrier wait that acquires them (the per-step TMA loads are async-proxy writes).
#include <cstdint>

#include "cuda/bwd/bwd_mainloop.cuh"
#include "cuda/bwd/sm90_bwd_traits.cuh"
#include "cuda/common/warpgroup.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90BwdMainloop {
  using Element = typename Traits::Element;
  using Base = typename Traits::Base;
  using Sm80 = BwdMainloop<Base>;  // scores_to_gradients (softcap / ALiBi)
  using SAcc = typename Traits::SAcc;
  using DkAcc = typename Traits::DkAcc;
  using DvAcc = typename Traits::DvAcc;
  using DqAcc = typename Traits::DqAcc;
  using T = Traits;
  static constexpr int kBlockM = T::kBlockM, kBlockN = T::kBlockN, kThreads = T::kConsumerThreads;
  static constexpr int kD = T::kD, kDv = T::kDv;
  static constexpr int kSRegs = SAcc::kN * 4;  // 32: (16 keys, 64 rows) / 32 lanes
  using RowFrags = uint32_t[kBlockM / 16][4];  // (16 keys, kBlockM rows) 16-bit, as kBlockM / 16 k16 A fragments

  /// Issues acc (64 keys, 64 rows) = A_w B^T over `depth` columns: A = this warpgroup's 64 rows of a (kBlockN,
  /// depth) tile, B = a (kBlockM, depth) tile, both K-major swizzled boxes.
  template <int kDepth>
  static __device__ __forceinline__ void issue_transposed_scores(float* acc, uint32_t a_tile, int a_box_bytes,
                                                                 uint32_t b_tile, int b_box_bytes) {
#pragma unroll
    for (int kk = 0; kk < kDepth / 16; ++kk) {
      const uint32_t column = (kk % 4) * 32;  // bytes of the 16-element slice within its 64-column box
      WgmmaSS<Element, kBlockM>::run(acc, kmajor_descriptor(a_tile + (kk / 4) * a_box_bytes + column),
                                     kmajor_descriptor(b_tile + (kk / 4) * b_box_bytes + column), kk > 0);
    }
  }

  /// Issues acc (64 keys, kN) += frags (64 keys, kBlockM rows) * B, B a (kBlockM, kN) tile read MN-major.
  template <int kN>
  static __device__ __forceinline__ void issue_key_gradient(float* acc, const RowFrags& a, uint32_t b_tile,
                                                            int b_box_bytes) {
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk)  // rows 16kk..: 16 rows of 128 bytes in every box of B
      WgmmaRS<Element, kN>::run(acc, a[kk], mnmajor_descriptor(b_tile + kk * 16 * 128, b_box_bytes), 1);
  }


  /// Stores a warp's dS^T (16 keys at key0, kBlockM rows) as 16-bit into the swizzled dS^T tile.
  static __device__ __forceinline__ void store_ds(uint8_t* tile, const SAcc& ds, int key0, int lane) {
#pragma unroll
    for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int key = key0 + SAcc::row_of_slot(half, lane), row = SAcc::col_of(n, 0, lane);
        *reinterpret_cast<uint32_t*>(tile + T::DsTile::offset(key, row)) =
            pack_pair<Element>(ds.v[0][n][2 * half], ds.v[0][n][2 * half + 1]);
      }
  }

  /// S^T -> P^T in place (plain logits: scale * dot), masked on boundary tiles and by the element bits `hidden`;
  /// the first half of BwdMainloop::scores_to_gradients, so that it runs while dP^T is still being computed.
  static __device__ __forceinline__ void probabilities(const BwdParams& p, const BwdKvWork& w, const SequenceMask& mask,
                                                       const BwdStep& step, uint32_t hidden, int t0,
                                                       const float* lse_log2, int key0, int lane, SAcc& st) {
    const int key_stop = w.j0 + p.tile_keys;  // keys past it belong to no tile of this CTA (a half-filled tile)
    const bool partial = step.element || p.tile_keys < kBlockN ||
                         mask.classify(t0, min(t0 + kBlockM, static_cast<int>(mask.sq)), w.j0, key_stop) !=
                             SequenceMask::Tile::full;
    if (partial)
      probability_loop<true>(p, w, mask, hidden, t0, lse_log2, key0, lane, st);
    else
      probability_loop<false>(p, w, mask, hidden, t0, lse_log2, key0, lane, st);
  }
  template <bool kMasked>  // interior tiles: no per-element mask arithmetic at all
  static __device__ __forceinline__ void probability_loop(const BwdParams& p, const BwdKvWork& w,
                                                          const SequenceMask& mask, uint32_t hidden, int t0,
                                                          const float* lse_log2, int key0, int lane, SAcc& st) {
    const int key_stop = w.j0 + p.tile_keys;
#pragma unroll
    for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
      for (int e1 = 0; e1 < 2; ++e1) {
        const int row = SAcc::col_of(n, e1, lane);  // query row of the step (a column of S^T)
        const float row_lse = lse_log2[row];
        const int64_t token = t0 + row;
#pragma unroll
        for (int r = 0; r < SAcc::kRowSlots; ++r) {
          float& x = st.v[r / 2][n][2 * (r % 2) + e1];
          float prob = fast_exp2(fmaf(x, p.scale_log2, -row_lse));
          if constexpr (kMasked) {
            const int64_t key = w.j0 + key0 + SAcc::row_of_slot(r, lane);
            const uint32_t bit = (n * 2 + e1) * SAcc::kRowSlots + r;  // element_hidden_bits' order
            if (key >= key_stop || !mask.visible(token, key) || ((hidden >> bit) & 1u)) prob = 0.f;
          }
          x = prob;
        }
      }
  }
  /// dP^T -> dS^T = P^T o (dP^T - D) * scale in place (plain logits).
  static __device__ __forceinline__ void gradients(const BwdParams& p, const float* dsum, int lane, const SAcc& pt,
                                                   SAcc& dpt) {
#pragma unroll
    for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
      for (int e1 = 0; e1 < 2; ++e1) {
        const float row_d = dsum[SAcc::col_of(n, e1, lane)];
#pragma unroll
        for (int r = 0; r < SAcc::kRowSlots; ++r) {
          const int i = 2 * (r % 2) + e1;
          dpt.v[r / 2][n][i] = pt.v[r / 2][n][i] * (dpt.v[r / 2][n][i] - row_d) * p.scale;
        }
      }
  }

  /// Runs every step of `w` into dk / dv (zeroed by the caller); `thread` is the consumer thread (0..255). The
  /// kernel is specialized on the logit path (plain / general: softcap, ALiBi) and the mask kind (dense / block
  /// mask): one copy of the loop per kernel, so that the general logits and the element rule of partial mask
  /// blocks cost the plain dense loop no registers (log step 19: one kernel with all four loops spilled twice as
  /// much).
  template <int kLogits, BwdWalkKind kKind, int kDqPartials>
  static __device__ __forceinline__ void run(const BwdParams& p, const BwdKvWork& w, uint8_t* smem,
                                                   Sm90BwdBarriers<T::kStages>& bar, int thread, DkAcc& dk,
                                                   DvAcc& dv) {
    const int warp = thread / 32, lane = thread % 32;
    const int wg = warp / 4;
    const int key0 = 16 * warp;                              // this warp's keys in S^T, dK, dV
    const int dq_row0 = 16 * (warp % 4), dq_col0 = T::kDqSplitKeys ? 0 : wg * (kD / 2);  // this warp's dQ slice
    const int dq_key0 = T::kDqSplitKeys ? 64 * wg : 0;  // first key of the dQ GEMM's depth
    const uint32_t dq_k_box = T::kDqSplitKeys ? 0 : wg * T::KTile::kBoxBytes;  // the K box of its columns
    const int dq_buffer = T::kDqSplitKeys ? wg : 0;  // kD = 64: one partial sum per warpgroup
    // kD = 128: both warpgroups' halves of dS^T; kD = 64: the warpgroup reads only its own.
    const int ds_barrier = T::kDqSplitKeys ? T::kDsHalfBarrier0 + wg : T::kDsBarrier;
    const int ds_threads = T::kDqSplitKeys ? 128 : kThreads;
    const uint32_t base = smem_address(smem);
    const uint32_t k_rows = base + T::kKOffset + 64 * wg * 128;  // this warpgroup's 64 keys of every K box
    const uint32_t v_rows = base + T::kVOffset + 64 * wg * 128;
    const SequenceMask mask = bwd_mask(p, w.seq);

    auto compute = [&](const BwdStep& step, int it) {
      const int stage = it % T::kStages, t0 = step.m * kBlockM;
      const uint32_t q_tile = base + T::kStage0 + stage * T::kStageBytes + T::kQOffset;
      const uint32_t do_tile = base + T::kStage0 + stage * T::kStageBytes + T::kDoOffset;
      const int ds_offset = T::kDsOffset + (it & 1) * T::DsTile::kBytes;  // this step's dS^T buffer
      const uint32_t ds_tile = base + ds_offset;
      const float* lse_log2 = reinterpret_cast<const float*>(smem + T::kRowsOffset + stage * T::kRowsBytes);
      const float* dsum = lse_log2 + kBlockM;

      const uint32_t hidden =
          kKind == BwdWalkKind::sparse && step.element ? element_hidden_bits<SAcc, true>(p, w, step.head, t0, key0, 0, lane) : 0u;
      mbarrier_wait(&bar.full[stage], (it / T::kStages) & 1);
      SAcc st, dpt;  // (16 keys, kBlockM rows) f32 per warp: S^T then P^T; dP^T then dS^T
      RowFrags pa, dsa;  // P^T, dS^T in Element
      wgmma_fence();
      issue_transposed_scores<kD>(&st.v[0][0][0], k_rows, T::KTile::kBoxBytes, q_tile, T::QTile::kBoxBytes);
      wgmma_commit();
      issue_transposed_scores<kDv>(&dpt.v[0][0][0], v_rows, T::VTile::kBoxBytes, do_tile, T::DoTile::kBoxBytes);
      wgmma_commit();
      auto issue_dv = [&] {  // dV += P^T dO, P^T from registers
        fence_registers<DvAcc::kN * 4>(&dv.v[0][0][0]);
        wgmma_fence();
        issue_key_gradient<kDv>(&dv.v[0][0][0], pa, do_tile, T::DoTile::kBoxBytes);
        wgmma_commit();
      };
      if constexpr (kLogits == Sm80::kLogitsPlain) {
        // P^T while dP^T is computed (issuing dV before dS^T was tried: same speed, 34 B more spills).
        wgmma_wait<1>();
        fence_registers<kSRegs>(&st.v[0][0][0]);
        probabilities(p, w, mask, step, hidden, t0, lse_log2, key0, lane, st);
        wgmma_wait<0>();
        fence_registers<kSRegs>(&dpt.v[0][0][0]);
        gradients(p, dsum, lane, st, dpt);
        acc_to_a_fragments<Element>(st, pa);
        issue_dv();
      } else {  // softcap / ALiBi: dlogit/ddot needs the logit, so both in one pass after both GEMMs
        wgmma_wait<0>();
        fence_registers<kSRegs>(&st.v[0][0][0]);
        fence_registers<kSRegs>(&dpt.v[0][0][0]);
        Sm80::template scores_to_gradients<kLogits>(p, w, mask, step, hidden, t0, lse_log2, dsum, key0, 0, lane, st,
                                                    dpt);
        acc_to_a_fragments<Element>(st, pa);
        issue_dv();
      }
      acc_to_a_fragments<Element>(dpt, dsa);
      store_ds(smem + ds_offset, dpt, key0, lane);
      fence_registers<DkAcc::kN * 4>(&dk.v[0][0][0]);
      wgmma_fence();
      issue_key_gradient<kD>(&dk.v[0][0][0], dsa, q_tile, T::QTile::kBoxBytes);
      wgmma_commit();

      fence_async_shared();  // this thread's dS^T stores, visible to the wgmma of both warpgroups
      named_barrier_sync(ds_barrier, ds_threads);
      // dV, dK done (they ran during the barrier): P^T / dS^T fragments and the stage are free before dQ.
      wgmma_wait<0>();
      hold_fragments(pa);
      hold_fragments(dsa);
      fence_registers<DvAcc::kN * 4>(&dv.v[0][0][0]);
      fence_registers<DkAcc::kN * 4>(&dk.v[0][0][0]);
      DqAcc dq;  // (16 rows, kDqCols) f32 per warp
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < T::kDqKeys / 16; ++kk) {  // keys dq_key0 + 16kk..: rows of dS^T and of K
        const uint32_t key_rows = (dq_key0 + 16 * kk) * 128;
        WgmmaSSMN<Element, T::kDqCols>::run(
            &dq.v[0][0][0], mnmajor_descriptor(ds_tile + key_rows, T::DsTile::kBoxBytes),
            mnmajor_descriptor(base + T::kKOffset + dq_k_box + key_rows, T::KTile::kBoxBytes), kk > 0);
      }
      wgmma_commit();
      // The stage's last readers (the dK / dV GEMMs, this thread's LSE / D loads) are done. Every thread arrives:
      // an arrival releases only the arriving thread's own reads (lane 0 after __syncwarp is what racecheck flagged
      // in the forward).
      mbarrier_arrive(&bar.empty[stage]);
      wgmma_wait<0>();
      fence_registers<DqAcc::kN * 4>(&dq.v[0][0][0]);
      named_barrier_sync(T::kDqEmptyBarrier, T::kDqHandoffThreads);  // the writer has read the last step's dQ
      stage_dq(smem + T::kDqOffset + dq_buffer * T::kDqBufferBytes, dq, dq_row0, dq_col0, lane);
      if constexpr (T::kDqSplitKeys) {
        if (kDqPartials == 1 && p.deterministic) {  // one sum per element, added in the turn's fixed order
          named_barrier_sync(T::kDsBarrier, kThreads);  // both partial sums staged (kDsBarrier is free at kD = 64)
          fold_partial_sums(smem + T::kDqOffset, thread);
        }
      }
      named_barrier_arrive(T::kDqFullBarrier, T::kDqHandoffThreads);
    };

    BwdWalk<kBlockM, kKind> walk;
    walk.init(p, w);
    BwdStep step;
    bool more = walk.next(p, w, mask, step);
    if (!more) return;  // no query tile sees this KV tile: nothing loaded, dK = dV = 0
    mbarrier_wait(&bar.kv_full, 0);
    fence_async_shared();  // the loaders' cp.async writes of K and V, before the wgmma that read them
    for (int it = 0; more; ++it) {
      compute(step, it);
      more = walk.next(p, w, mask, step);
    }
  }

  /// Deterministic kD = 64: buffer 0 += buffer 1 (both (kBlockM, kD) f32), by the 256 consumer threads after both
  /// are staged; fenced for the writer's bulk reduction of buffer 0. (Folded by the writer warp, its generic reads
  /// were ordered before the next staging only by its bar.arrive, which racecheck does not count.)
  static __device__ __forceinline__ void fold_partial_sums(uint8_t* buffers, int thread) {
    static_assert(T::kDqRowFloats == kD && T::kDqBuffers == 2, "two unpadded buffers");
    constexpr int kChunks = kBlockM * kD / 4;  // float4 chunks of one buffer
    float4* first = reinterpret_cast<float4*>(buffers);
    const float4* second = reinterpret_cast<const float4*>(buffers + T::kDqBufferBytes);
#pragma unroll
    for (int c = thread; c < kChunks; c += kThreads) {
      const float4 a = first[c], b = second[c];
      first[c] = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
    }
    fence_async_shared();
  }

  /// dQ of one step (the warp's (16 rows, kDqCols) fragments) into the f32 staging buffer (kBlockM,
  /// kDqRowFloats), fenced for the writer warp's bulk reductions (async proxy).
  static __device__ __forceinline__ void stage_dq(uint8_t* buffer_bytes, const DqAcc& dq, int row0, int col0,
                                                  int lane) {
    float* buffer = reinterpret_cast<float*>(buffer_bytes);  // (kBlockM, kDqRowFloats)
#pragma unroll
    for (int r = 0; r < DqAcc::kRowSlots; ++r) {
      const int row = row0 + DqAcc::row_of_slot(r, lane);
#pragma unroll
      for (int n = 0; n < DqAcc::kN; ++n)
        *reinterpret_cast<float2*>(buffer + row * T::kDqRowFloats + col0 + DqAcc::col_of(n, 0, lane)) =
            make_float2(dq.v[r / 2][n][2 * (r % 2)], dq.v[r / 2][n][2 * (r % 2) + 1]);
    }
    fence_async_shared();
  }
};

}  // namespace omniattn::detail::cuda
