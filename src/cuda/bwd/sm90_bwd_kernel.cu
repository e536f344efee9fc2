// The sm_90a backward (D = Dv = 64 and 128, bf16 and f16): the sm_80 backward's preprocess and postprocess kernels
// around a warp-specialized wgmma main kernel: three loader warps (K, V by cp.async; per step one thread issues the
// TMA loads: sm90_bwd_loader.cuh), a dQ writer warp (sm90_bwd_dq_writer.cuh) and two consumer warpgroups
// (sm90_bwd_mainloop.cuh). Built for sm_90a alone, one kernel per (mask kind, logit path[, two dQ accumulators]).
#include <string>

#include "cuda/bwd/bwd_epilogue.cuh"
#include "cuda/bwd/bwd_launch.hpp"
#include "cuda/bwd/bwd_timeline.cuh"
#include "cuda/bwd/sm90_bwd_dq_writer.cuh"
#include "cuda/bwd/sm90_bwd_loader.cuh"
#include "cuda/bwd/sm90_bwd_mainloop.cuh"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/kernel_setup.hpp"
#include "omniattn/error.hpp"

namespace omniattn::detail::cuda {

// One kernel per (mask kind, logit path): kSparse (a block mask) and kLogits (BwdMainloop::kLogitsPlain or
// kLogitsGeneral: softcap, ALiBi). ptxas allocates registers for a whole kernel: with the four loops in one kernel
// the plain dense loop spilled 1206 / 2324 B (D = 128) instead of 296 / 384 (log step 19). kDqPartials = 2: the
// deterministic D = 64 kernels that add the two warpgroups' dQ sums into two accumulators (log step 20).
template <class Traits, bool kSparse, int kLogits, int kDqPartials>
__global__ void __launch_bounds__(Traits::kThreads, 1) bwd_main_sm90_kernel(const __grid_constant__ Sm90BwdParams sp) {
  constexpr BwdWalkKind kKind = kSparse ? BwdWalkKind::sparse : BwdWalkKind::dense;
  const BwdParams& p = sp.base;
  BwdKvWork work;
  if (!make_kv_work<Traits::kBlockM, kKind>(p, work)) return;
  uint8_t* smem = dynamic_smem();
  auto& bar = *reinterpret_cast<Sm90BwdBarriers<Traits::kStages>*>(smem + Traits::kBarrierOffset);
  if (threadIdx.x == 0) {
    ::cuda::ptx::mbarrier_init(&bar.kv_full, Traits::kLoaderThreads);
#pragma unroll
    for (int s = 0; s < Traits::kStages; ++s) {
      ::cuda::ptx::mbarrier_init(&bar.full[s], 1);  // the TMA thread's arrive.expect_tx
      ::cuda::ptx::mbarrier_init(&bar.empty[s], Traits::kConsumerThreads);
    }
    ::cuda::ptx::fence_mbarrier_init(::cuda::ptx::sem_release, ::cuda::ptx::scope_cluster);
  }
  __syncthreads();
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (warp < 4) {  // producer warpgroup: warps 0, 2, 3 load, warp 1 writes dQ
    release_registers<Traits::kLoaderRegs>();
    if (warp == Traits::kWriterWarp)
      Sm90BwdDqWriter<Traits>::template run<kKind, kDqPartials>(p, work, smem, lane);
    else
      Sm90BwdLoader<Traits>::template run<kKind>(sp, work, smem, bar, warp == 0 ? 0 : warp - 1, lane);
    return;
  }
  claim_registers<Traits::kConsumerRegs>();
  const int thread = static_cast<int>(threadIdx.x) - 128, consumer_warp = warp - 4;
  if (thread == 0) bwd_cta_started(p);
  typename Traits::DkAcc dk;  // (16 keys, kD) f32 per warp, summed over every step
  typename Traits::DvAcc dv;  // (16 keys, kDv) f32 per warp
  dk.fill(0.f);
  dv.fill(0.f);
  Sm90BwdMainloop<Traits>::template run<kLogits, kKind, kDqPartials>(p, work, smem, bar, thread, dk, dv);
  // dK, dV of the warp's 16 keys, every column (rows past the stored keys are not written).
  BwdEpilogue<typename Traits::Base>::template write<kKind>(p, work, dk, dv, 16 * consumer_warp, 0, 0, lane);
  if (thread == 0) bwd_cta_finished<Traits::kBlockM, kKind>(p, work);
}

template <class Traits, bool kSparse, int kLogits, int kDqPartials>
void launch_bwd_main_sm90(const Sm90BwdParams& sp, cudaStream_t stream) {
  constexpr auto kernel = &bwd_main_sm90_kernel<Traits, kSparse, kLogits, kDqPartials>;
  // Carveout left to the driver: 146 KB of shared memory leaves ~90 KB of L1 for the spilled registers.
  configure_kernel_once<kernel>(Traits::kSmemBytes, /*max_shared_carveout=*/false,
                                "cudaFuncSetAttribute (sm90 backward kernel)");
  kernel<<<BwdKvScheduler::grid(sp.base), Traits::kThreads, Traits::kSmemBytes, stream>>>(sp);
  check_launch("launch of the sm90 backward kernel");
}

template <class Element, int kD, int kDv>
void launch_bwd_sm90(const Sm90BwdParams& sp, cudaStream_t stream) {
  const BwdParams& p = sp.base;
  using Traits = Sm90BwdTraits<Element, kD, kDv>;
  using Sm80 = BwdMainloop<typename Traits::Base>;
  // The dense kernels compile no split path (BwdKvUnit): only block masks are split.
  if (p.units != nullptr && !p.block_sparse)
    throw Error("backward split plan", "units only for a block mask", "units on a dense launch (internal)");
  // Two dQ accumulators: the deterministic D = 64 kernels only (their two warpgroups' partial sums).
  const bool partials = p.dq_partials == 2;
  if (p.dq_partials != 1 && !(partials && p.deterministic && Traits::kDqSplitKeys))
    throw Error("backward dQ accumulators", "1, or 2 for the deterministic D = 64 kernel",
                std::to_string(p.dq_partials) + " (internal)");
  auto launch = [&]<bool kSparse, int kLogits>() {
    if constexpr (Traits::kDqSplitKeys) {
      if (partials) return launch_bwd_main_sm90<Traits, kSparse, kLogits, 2>(sp, stream);
    }
    launch_bwd_main_sm90<Traits, kSparse, kLogits, 1>(sp, stream);
  };
  launch_bwd_preprocess<Element, kD, kDv>(p, stream);
  if (p.n_blocks > 0) {
    if (p.block_sparse) {
      if (p.general_logits) launch.template operator()<true, Sm80::kLogitsGeneral>();
      else launch.template operator()<true, Sm80::kLogitsPlain>();
    } else {
      if (p.general_logits) launch.template operator()<false, Sm80::kLogitsGeneral>();
      else launch.template operator()<false, Sm80::kLogitsPlain>();
    }
  }
  launch_bwd_postprocess<Element, kD, kDv>(p, stream);
}

bool run_bwd_sm90(DType dtype, int d, int dv, const BwdParams& p, const BwdTmaMaps& maps, cudaStream_t stream) {
  static_assert(sm90_bwd_supports(64, 64) && sm90_bwd_supports(128, 128));
  Sm90BwdParams sp{};
  sp.base = p;
  sp.q_map = maps.q;
  sp.do_map = maps.dout;
  sp.seq_maps = maps.device_per_sequence;
  if ((p.seqs != nullptr) != (sp.seq_maps != nullptr))
    throw Error("backward tensor maps", "per-sequence maps exactly for varlen batches", "a mismatch (internal)");
  auto run = [&]<int kD>() {
    if (dtype == DType::bf16) launch_bwd_sm90<__nv_bfloat16, kD, kD>(sp, stream);
    if (dtype == DType::f16) launch_bwd_sm90<__half, kD, kD>(sp, stream);
    return dtype == DType::bf16 || dtype == DType::f16;
  };
  if (d != dv) return false;
  if (d == 64) return run.template operator()<64>();
  if (d == 128) return run.template operator()<128>();
  return false;
}

}  // namespace omniattn::detail::cuda
