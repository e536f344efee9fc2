#pragma once
// The backward mainloop of one CTA (one KV tile of kBlockN keys, K and V loaded once): for every query head
// of the KV head's group and every query block that sees the tile (BwdWalk, bwd_sparse.cuh: the interval of
// bwd_tiles.hpp, or the query blocks a block mask lists for the tile's KV block), one step
//   S^T = K Q^T, dP^T = V dO^T                    (registers, warp grid "sdp")
//   P^T = exp2(logit * log2e - LSE * log2e)        (LSE from the forward; mask on boundary tiles only)
//   dS^T = P^T o (dP^T - D) o dlogit/ddot          (ScoreMod::dlogit_ddot: scale, softcap chain rule)
//   P^T, dS^T -> shared memory (16-bit); barrier
//   dV += P^T dO, dK += dS^T Q                     (registers for the whole CTA, warp grid "dkv")
//   dQ  = dS K  -> f32 atomic adds into the block's dQ accumulator (warp grid "dq"); in deterministic mode
//                  the CTAs of one query block take turns through its semaphore, in KV tile order.
//
// Pipelines (BwdTuning::stages):
//  2: Q / dO / LSE / D double-buffered. Top of step i: wait all; barrier (step i landed; every warp is done
//     with step i-1, whose buffers step i+1 now overwrites, and with P^T / dS^T); issue step i+1; compute i.
//  1: top of step i: barrier (step i-1 done); issue step i; wait all; barrier; compute i.
//
// Block-sparse steps of a partial mask block also evaluate the ElementMask per element (on top of the
// SequenceMask of boundary tiles). A mask with 64-key blocks at kBlockN = 128 gives each CTA 64 keys
// (p.tile_keys): K/V rows [64, 128) are zero-filled without a load, their scores masked, and the warps whose
// S^T / dP^T or dK / dV slice lies there skip those GEMMs.
#include <cstdint>

#include "core/mask_policy.hpp"
#include "cuda/bwd/bwd_scheduler.cuh"
#include "cuda/bwd/bwd_sparse.cuh"
#include "cuda/bwd/bwd_sync.cuh"
#include "cuda/bwd/bwd_traits.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct BwdMainloop {
  using Element = typename Traits::Element;
  using SAcc = typename Traits::SAcc;
  using DkAcc = typename Traits::DkAcc;
  using DvAcc = typename Traits::DvAcc;
  using DqAcc = typename Traits::DqAcc;
  using QTile = typename Traits::QTile;
  using DoTile = typename Traits::DoTile;
  using KTile = typename Traits::KTile;
  using VTile = typename Traits::VTile;
  using PTile = typename Traits::PTile;
  static constexpr int kBlockM = Traits::kBlockM, kBlockN = Traits::kBlockN, kThreads = Traits::kThreads;
  static constexpr int kD = Traits::kD, kDv = Traits::kDv, kStageBytes = Traits::kStageBytes;

  /// Runs every step of `w` into dk / dv (zeroed by the caller).
  static __device__ __forceinline__ void run(const BwdParams& p, const BwdKvWork& w, uint8_t* smem, DkAcc& dk,
                                             DvAcc& dv) {
    const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
    const uint32_t base = smem_address(smem);
    const SequenceMask mask = bwd_mask(p, w.seq);

    // Warp tiles of the three warp grids (BwdTuning).
    const int sdp_key0 = (warp % Traits::kSdpWarpsN) * Traits::kSdpKeys;
    const int sdp_row0 = (warp / Traits::kSdpWarpsN) * Traits::kSdpRows;
    const int dkv_key0 = (warp % Traits::kDkvWarpsN) * Traits::kDkvKeys;
    const int dk_col0 = (warp / Traits::kDkvWarpsN) * Traits::kDkCols;
    const int dv_col0 = (warp / Traits::kDkvWarpsN) * Traits::kDvCols;
    const int dq_row0 = (warp % Traits::kDqWarpsM) * Traits::kDqRows;
    const int dq_col0 = (warp / Traits::kDqWarpsM) * Traits::kDqCols;

    // Per-lane operand addresses; Q / dO ones get + stage * kStageBytes.
    using T = Traits;
    const uint32_t k_a = base + T::kKOffset + T::KasA::block(sdp_key0, 0) + T::KasA::a_lane(lane);
    const uint32_t q_b = base + T::kQOffset + T::QasB::block(sdp_row0, 0) + T::QasB::b_lane(lane);
    const uint32_t v_a = base + T::kVOffset + T::VasA::block(sdp_key0, 0) + T::VasA::a_lane(lane);
    const uint32_t do_b = base + T::kDoOffset + T::DoasB::block(sdp_row0, 0) + T::DoasB::b_lane(lane);
    const uint32_t p_a = base + T::kPOffset + T::PasA::block(dkv_key0, 0) + T::PasA::a_lane(lane);
    const uint32_t ds_a = base + T::kDsOffset + T::PasA::block(dkv_key0, 0) + T::PasA::a_lane(lane);
    const uint32_t do_bt = base + T::kDoOffset + T::DoasBt::block(dv_col0, 0) + T::DoasBt::b_lane(lane);
    const uint32_t q_bt = base + T::kQOffset + T::QasBt::block(dk_col0, 0) + T::QasBt::b_lane(lane);
    const uint32_t ds_at = base + T::kDsOffset + T::DsasAt::block(dq_row0, 0) + T::DsasAt::a_lane(lane);
    const uint32_t k_bt = base + T::kKOffset + T::KasBt::block(dq_col0, 0) + T::KasBt::b_lane(lane);

    // Warps whose keys all lie past the tile's p.tile_keys (a half-filled tile) skip the GEMMs of those keys.
    const bool sdp_keys = sdp_key0 < p.tile_keys, dkv_keys = dkv_key0 < p.tile_keys;

    // K, V: (kBlockN, kD), (kBlockN, kDv); keys past k_len (or past the tile's keys) are zero-filled (and masked).
    auto load_kv = [&] {
      const int keys = min(w.seq.k_len - w.j0, p.tile_keys);
      copy_rows_async<KTile, kThreads>(base + T::kKOffset, BwdRows<Element>::k(p, w), p.k_token, keys, thread);
      copy_rows_async<VTile, kThreads>(base + T::kVOffset, BwdRows<Element>::v(p, w), p.v_token, keys, thread);
    };
    // Q, dO: (kBlockM, kD), (kBlockM, kDv) of one step, rows past q_len zero-filled; LSE * log2e and D:
    // (kBlockM) f32 each from the preprocess's padded workspace.
    auto load_step = [&](const BwdStep& step, int stage) {
      const int h = step.head, t0 = step.m * kBlockM;
      const uint32_t s = base + stage * kStageBytes;
      copy_rows_async<QTile, kThreads>(s + T::kQOffset, BwdRows<Element>::q(p, w, t0, h), p.q_token,
                                       w.seq.q_len - t0, thread);
      copy_rows_async<DoTile, kThreads>(s + T::kDoOffset, BwdRows<Element>::dout(p, w, t0, h), p.do_token,
                                        w.seq.q_len - t0, thread);
      constexpr int kRowChunks = kBlockM / 4;  // 16-byte chunks of one f32 row vector
      const int64_t rows = bwd_row_block(p, w, step) * kBlockM;
      if (thread < kRowChunks)
        cp_async_16(s + T::kLseOffset + 16 * thread, p.lse_log2 + rows + 4 * thread, true);
      else if (thread < 2 * kRowChunks)
        cp_async_16(s + T::kDsumOffset + 16 * (thread - kRowChunks), p.dsum + rows + 4 * (thread - kRowChunks), true);
    };

    auto compute = [&](const BwdStep& step, int stage) {
      const int t0 = step.m * kBlockM;
      const uint32_t s = stage * kStageBytes;
      const float* lse_log2 = reinterpret_cast<const float*>(smem + s + T::kLseOffset);  // (kBlockM)
      const float* dsum = reinterpret_cast<const float*>(smem + s + T::kDsumOffset);     // (kBlockM)

      // ElementMask of a partial mask block, evaluated before S^T / dP^T are live (one bit per score).
      const uint32_t hidden =
          step.element ? element_hidden_bits<SAcc>(p, w, step.head, t0, sdp_key0, sdp_row0, lane) : 0u;
      SAcc st, dpt;  // (kSdpKeys, kSdpRows) f32 per warp: S^T then P^T; dP^T then dS^T
      st.fill(0.f);
      dpt.fill(0.f);
      if (sdp_keys) {
        warp_gemm_smem<Element, typename T::KasA, typename T::QasB, kD>(st, k_a, q_b + s);
        warp_gemm_smem<Element, typename T::VasA, typename T::DoasB, kDv>(dpt, v_a, do_b + s);
      }
      scores_to_gradients(p, w, mask, step, hidden, t0, lse_log2, dsum, sdp_key0, sdp_row0, lane, st, dpt);
      store_transposed(smem + T::kPOffset, st, sdp_key0, sdp_row0, lane);
      store_transposed(smem + T::kDsOffset, dpt, sdp_key0, sdp_row0, lane);
      __syncthreads();  // P^T and dS^T complete

      if (dkv_keys) {
        warp_gemm_smem<Element, typename T::PasA, typename T::DoasBt, kBlockM>(dv, p_a, do_bt + s);
        warp_gemm_smem<Element, typename T::PasA, typename T::QasBt, kBlockM>(dk, ds_a, q_bt + s);
      }
      DqAcc dq;  // (kDqRows, kDqCols) f32 per warp
      dq.fill(0.f);
      warp_gemm_smem<Element, typename T::DsasAt, typename T::KasBt, kBlockN>(dq, ds_at, k_bt);
      add_dq(p, w, mask, step, bwd_row_block(p, w, step), t0, dq, dq_row0, dq_col0, thread, lane);
    };

    BwdWalk<kBlockM> walk;
    walk.init(p, w);
    BwdStep step, next;
    bool more = walk.next(p, w, mask, step);
    if (!more) return;  // no query tile sees this KV tile: nothing loaded, dK = dV = 0
    if constexpr (Traits::kStages == 2) {
      load_kv();
      load_step(step, 0);
      cp_async_commit();
      for (int it = 0; more; ++it) {
        cp_async_wait<0>();
        __syncthreads();
        more = walk.next(p, w, mask, next);
        if (more) load_step(next, (it + 1) & 1);
        cp_async_commit();
        compute(step, it & 1);
        step = next;
      }
    } else {
      static_assert(Traits::kStages == 1, "1 or 2 Q/dO stages");
      load_kv();
      for (int it = 0; more; ++it) {
        if (it > 0) __syncthreads();
        load_step(step, 0);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        compute(step, 0);
        more = walk.next(p, w, mask, step);
      }
    }
  }

  /// S^T -> P^T and dP^T -> dS^T in place, for the warp's (kSdpKeys, kSdpRows) elements. `hidden`: the
  /// ElementMask's verdict per element (element_hidden_bits), 0 outside partial mask blocks.
  /// kLogits: kLogitsRuntime reads p.general_logits per score; kLogitsPlain / kLogitsGeneral fix the path (a
  /// caller that branches once per CTA keeps the general path's registers out of the plain loop).
  static constexpr int kLogitsRuntime = 0, kLogitsPlain = 1, kLogitsGeneral = 2;
  template <int kLogits = kLogitsRuntime>
  static __device__ __forceinline__ void scores_to_gradients(const BwdParams& p, const BwdKvWork& w,
                                                             const SequenceMask& mask, const BwdStep& step,
                                                             uint32_t hidden, int t0,
                                                             const float* lse_log2, const float* dsum, int key0,
                                                             int row0, int lane, SAcc& st, SAcc& dpt) {
    // Keys past key_stop belong to no tile of this CTA (a half-filled tile): masked like the SequenceMask's.
    const int key_stop = w.j0 + p.tile_keys;
    const bool partial = step.element || p.tile_keys < kBlockN ||
                         mask.classify(t0, min(t0 + kBlockM, static_cast<int>(mask.sq)), w.j0, key_stop) !=
                             SequenceMask::Tile::full;
    // Two copies of the loop: interior tiles carry no per-element mask arithmetic (folded into selects, it was
    // ~70% of the loop's instructions).
    if (partial)
      score_loop<kLogits, true>(p, w, mask, step, hidden, t0, lse_log2, dsum, key0, row0, lane, st, dpt);
    else
      score_loop<kLogits, false>(p, w, mask, step, hidden, t0, lse_log2, dsum, key0, row0, lane, st, dpt);
  }

  template <int kLogits, bool kMasked>
  static __device__ __forceinline__ void score_loop(const BwdParams& p, const BwdKvWork& w, const SequenceMask& mask,
                                                    const BwdStep& step, uint32_t hidden, int t0,
                                                    const float* lse_log2, const float* dsum, int key0, int row0,
                                                    int lane, SAcc& st, SAcc& dpt) {
    constexpr float kLog2e = 1.4426950408889634f;
    const int h = step.head;
    const int key_stop = w.j0 + p.tile_keys;
    const float slope = p.alibi ? p.alibi[w.batch * p.alibi_batch_stride + h] : 0.f;
    const ScoreMod<float> mod{p.scale, p.softcap, slope};
    const ScoreMod<float> capped_only{p.scale, p.softcap, 0.f};  // logit before ALiBi
    const ScoreMod<float> alibi_only{1.f, 0.f, slope};            // ALiBi term alone: logit(0, ...)
#pragma unroll
    for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
      for (int e1 = 0; e1 < 2; ++e1) {
        const int row = row0 + SAcc::col_of(n, e1, lane);  // query row of the step (a column of S^T)
        const float row_lse = lse_log2[row], row_d = dsum[row];
        const int64_t token = t0 + row;
#pragma unroll
        for (int r = 0; r < SAcc::kRowSlots; ++r) {
          const int64_t key = w.j0 + key0 + SAcc::row_of_slot(r, lane);
          float& x = st.v[r / 2][n][2 * (r % 2) + e1];
          float& dp = dpt.v[r / 2][n][2 * (r % 2) + e1];
          float prob, dlogit;
          if (kLogits == kLogitsGeneral || (kLogits == kLogitsRuntime && p.general_logits)) {
            const float capped = capped_only.logit(x, 0, 0);
            const float logit = capped + alibi_only.logit(0.f, mask.diag(token), key);
            prob = fast_exp2(fmaf(logit, kLog2e, -row_lse));
            dlogit = mod.dlogit_ddot(capped);
          } else {
            prob = fast_exp2(fmaf(x, p.scale_log2, -row_lse));
            dlogit = p.scale;
          }
          if constexpr (kMasked) {
            const uint32_t bit = (n * 2 + e1) * SAcc::kRowSlots + r;  // element_hidden_bits' order
            if (key >= key_stop || !mask.visible(token, key) || ((hidden >> bit) & 1u)) prob = 0.f;
          }
          x = prob;
          dp = prob * (dp - row_d) * dlogit;
        }
      }
  }

  /// Stores a warp's (kSdpKeys, kSdpRows) f32 tile as 16-bit into a (kBlockN, kBlockM) PTile at (key0, row0).
  static __device__ __forceinline__ void store_transposed(uint8_t* tile, const SAcc& a, int key0, int row0,
                                                          int lane) {
#pragma unroll
    for (int m = 0; m < SAcc::kM; ++m)
#pragma unroll
      for (int n = 0; n < SAcc::kN; ++n)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int key = key0 + SAcc::row_of_slot(2 * m + half, lane), row = row0 + SAcc::col_of(n, 0, lane);
          *reinterpret_cast<uint32_t*>(tile + PTile::offset(key, row)) =
              pack_pair<Element>(a.v[m][n][2 * half], a.v[m][n][2 * half + 1]);
        }
  }

  /// Adds the warp's dQ of one step into the block's f32 accumulator. Deterministic mode: the block's
  /// semaphore counts the KV tiles that have added; this CTA waits for its turn (its rank among the tiles
  /// that see the block, in the order of BwdParams::dq_descending; with a block mask, sparse_dq_rank) and
  /// passes it on.
  static __device__ __forceinline__ void add_dq(const BwdParams& p, const BwdKvWork& w, const SequenceMask& mask,
                                                const BwdStep& step, int64_t row_block, int t0, const DqAcc& dq,
                                                int row0, int col0, int thread, int lane) {
    int rank = 0;
    if (p.deterministic) {
      if (thread < 32) rank = dq_turn(p, w, mask, step.head, step.m, t0, kBlockM, lane);  // warp 0 (thread 0's)
      if (thread == 0) semaphore_wait(p.semaphore + row_block, rank);
      __syncthreads();
    }
    float* acc = p.dq_accum + row_block * kBlockM * kD;  // (kBlockM, kD) f32
#pragma unroll
    for (int r = 0; r < DqAcc::kRowSlots; ++r) {
      const int row = row0 + DqAcc::row_of_slot(r, lane);
      if (t0 + row >= w.seq.q_len) continue;
#pragma unroll
      for (int n = 0; n < DqAcc::kN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          atomic_add_f32(acc + row * kD + col0 + DqAcc::col_of(n, e, lane), dq.v[r / 2][n][2 * (r % 2) + e]);
    }
    if (p.deterministic) {
      thread_fence();
      __syncthreads();
      if (thread == 0) semaphore_release(p.semaphore + row_block, rank + 1);
    }
  }
};

}  // namespace omniattn::detail::cuda
