#pragma once
// A consumer warpgroup of the sm_90a forward: 64 query rows (16 per warp), for each KV tile
//   wait K  ->  S = Q K^T (wgmma, Q and K from shared memory)  ->  release K
//   ->  logits (ScoreMod, only with softcap / ALiBi)  ->  mask (boundary tiles only)  ->  online softmax
//   ->  wait V  ->  O += P V (wgmma, P from registers, V from shared memory read transposed)  ->  release V.
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
  static constexpr int kSRegs = kBlockN / 2;
  static constexpr int kORegs = Traits::kDv / 2;

  /// S = Q K^T for this warpgroup's 64 rows: kD/16 wgmma m64 n kBlockN k16, both operands K-major.
  static __device__ __forceinline__ void gemm_qk(SAcc& s, uint32_t q_rows, uint32_t k_tile) {
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
    wgmma_wait<0>();
    fence_registers<kSRegs>(acc);
  }

  /// O += P V: kBlockN/16 wgmma m64 n kDv k16; P's accumulator fragments are A's register fragments.
  static __device__ __forceinline__ void gemm_pv(OAcc& o, const SAcc& s, uint32_t v_tile) {
    uint32_t pa[kBlockN / 16][4];  // (16 rows, 16 keys) slices of P in Element
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      pa[kk][0] = pack_pair<Element>(s.v[0][2 * kk][0], s.v[0][2 * kk][1]);
      pa[kk][1] = pack_pair<Element>(s.v[0][2 * kk][2], s.v[0][2 * kk][3]);
      pa[kk][2] = pack_pair<Element>(s.v[0][2 * kk + 1][0], s.v[0][2 * kk + 1][1]);
      pa[kk][3] = pack_pair<Element>(s.v[0][2 * kk + 1][2], s.v[0][2 * kk + 1][3]);
    }
    float* acc = &o.v[0][0][0];
    fence_registers<kORegs>(acc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)  // keys 16kk..: 16 rows of 128 bytes in every V box
      WgmmaRS<Element, Traits::kDv>::run(acc, pa[kk], mnmajor_descriptor(v_tile + kk * 16 * 128, Traits::kKvBoxBytes),
                                         1);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers<kORegs>(acc);
  }

  static __device__ __forceinline__ void run(const Sm90Params& p, const CtaWork& w, uint8_t* smem,
                                             Sm90Barriers<kStages>& bar, int consumer, OAcc& o,
                                             OnlineSoftmax<2>& softmax) {
    const int thread = static_cast<int>(threadIdx.x) % 128, warp = thread / 32, lane = thread % 32;
    const int warp_row0 = 64 * consumer + 16 * warp;
    const uint32_t base = smem_address(smem);
    const uint32_t q_rows = base + Traits::kQOffset + 64 * consumer * 128;  // this warpgroup's 64 rows of each box
    const SequenceMask mask{w.seq.q_len, w.seq.k_len, p.base.window_left, p.base.window_right, p.base.sinks};

    mbarrier_wait(&bar.q_full, 0);
    for (int it = 0; it < w.kv.count; ++it) {
      const int stage = it % kStages;
      const uint32_t parity = (it / kStages) & 1;
      const int j0 = w.kv.block(it) * kBlockN;

      SAcc s;  // (16 rows, kBlockN) f32 per warp
      mbarrier_wait(&bar.k_full[stage], parity);
      gemm_qk(s, q_rows, base + Traits::kKOffset + stage * Traits::kKBytes);
      if (lane == 0) mbarrier_arrive(&bar.k_empty[stage]);

      if (p.base.general_logits) TileScores<SAcc>::apply_score_mod(s, p.base, w, mask, warp_row0, j0, lane);
      if (mask.classify(w.t_first, w.t_end, j0, j0 + kBlockN) != SequenceMask::Tile::full)
        TileScores<SAcc>::apply_mask(s, p.base, w, mask, warp_row0, j0, lane);
      float rescale[2];
      softmax.update(s, p.base.mult_log2, rescale);
      o.scale_rows(rescale);

      mbarrier_wait(&bar.v_full[stage], parity);
      gemm_pv(o, s, base + Traits::kVOffset + stage * Traits::kVBytes);
      if (lane == 0) mbarrier_arrive(&bar.v_empty[stage]);
    }
  }
};

}  // namespace omniattn::detail::cuda
