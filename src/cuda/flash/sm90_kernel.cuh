#pragma once
// The sm_90a forward kernel: one CTA per tile or dynamic persistent (Sm90TileScheduler), warp-specialized
// (producer warpgroup 0 issues TMA loads; consumer warpgroups 1..kConsumers compute), and its launch. Included only
// by the per-row instantiation files (sm90_instantiate_d*.cu), which are compiled for sm_90a alone.
#include "cuda/common/cta_timeline.cuh"
#include "cuda/common/cuda_check.hpp"
#include "cuda/flash/sm90_consumer.cuh"
#include "cuda/flash/sm90_epilogue.cuh"
#include "cuda/flash/sm90_launch.hpp"
#include "cuda/flash/sm90_producer.cuh"
#include "cuda/flash/sm90_scheduler.cuh"

namespace omniattn::detail::cuda {

/// Debug (Sm90Params::timeline): tile t's record at the issue of its epilogue. Its work is derived again from t, so
/// that nothing of it stays live across the tile for this (a kept WorkTile made the D = 64 kernel spill 8 B more).
template <class Traits>
__device__ __noinline__ void record_tile_end(const Sm90Params& p, int t) {
  const WorkTile tile = Sm90TileScheduler::tile(p.base, p.section, t);
  CtaWork work;
  make_cta_work<Traits::kBlockM, Traits::kBlockN>(p.base, tile, work);
  cta_finished(p.timeline, t, tile.m_block, tile.head_block, p.base.is_sparse() ? -1 : work.kv.count);
}

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, 1) flash_fwd_sm90_kernel(const __grid_constant__ Sm90Params p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // 128-byte swizzle atoms are 1024 bytes: align the tiles (kSmemBytes holds the slack).
  uint8_t* smem = dynamic_smem();
  smem += (1024 - (smem_address(smem) & 1023)) & 1023;
  static_assert(sizeof(Sm90Barriers<Traits::kStages>) == Traits::kTune.barrier_bytes(),
                "barrier area and tuning table disagree");
  auto& bar = *reinterpret_cast<Sm90Barriers<Traits::kStages>*>(smem + Traits::kBarrierOffset);
  constexpr uint32_t kConsumerWarps = 4 * Traits::kConsumers;

  if (threadIdx.x == 0) {
    ::cuda::ptx::mbarrier_init(&bar.q_full, 1);
    ::cuda::ptx::mbarrier_init(&bar.q_empty, kConsumerWarps);
#pragma unroll
    for (int s = 0; s < Traits::kStages; ++s) {
      ::cuda::ptx::mbarrier_init(&bar.k_full[s], 1);
      ::cuda::ptx::mbarrier_init(&bar.v_full[s], 1);
      ::cuda::ptx::mbarrier_init(&bar.k_empty[s], kConsumerWarps);
      ::cuda::ptx::mbarrier_init(&bar.v_empty[s], kConsumerWarps);
    }
    ::cuda::ptx::fence_mbarrier_init(::cuda::ptx::sem_release, ::cuda::ptx::scope_cluster);
  }
  __syncthreads();

  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  if (warpgroup == 0) {
    release_registers<Traits::kProducerRegs>();
    if (threadIdx.x == 0) Sm90Producer<Traits>::run(p, smem, bar);
  } else {
    claim_registers<Traits::kConsumerRegs>();
    using Consumer = Sm90Consumer<Traits>;
    const int consumer = warpgroup - 1;
    if (consumer == Traits::kConsumers - 1) Consumer::pass_turn(consumer);  // consumer 0 issues first
    int kv_iter = 0;
    for (int tile_iter = 0;; ++tile_iter) {  // the producer's tiles, each handed over with its Q
      mbarrier_wait(&bar.q_full, tile_iter & 1);
      const int t = Consumer::handed_tile(bar);
      if (t < 0) break;
      if (p.timeline != nullptr && threadIdx.x == 128) cta_started(p.timeline, t);  // (debug: Sm90Params::timeline)
      CtaWork work;  // the producer hands valid tiles only
      make_cta_work<Traits::kBlockM, Traits::kBlockN>(p.base, Sm90TileScheduler::tile(p.base, p.section, t), work);
      typename Traits::OAcc o;  // (16 rows, kDv) f32 per warp
      o.fill(0.f);
      OnlineSoftmax<2> softmax;
      softmax.init();
      Consumer::run(p, work, smem, bar, consumer, kv_iter, o, softmax);
      Sm90Epilogue<Traits>::store(p, work, consumer, o, softmax, smem);
      if (p.timeline != nullptr && threadIdx.x == 128) record_tile_end<Traits>(p, t);
    }
    Sm90Epilogue<Traits>::drain();
    if (consumer == 0) Consumer::wait_turn(consumer);  // takes the opening turn's extra arrival: the ring ends balanced
  }
#endif
}

template <class Traits>
void configure_sm90_kernel_once() {
  configure_kernel_once<&flash_fwd_sm90_kernel<Traits>>(Traits::kSmemBytes, /*max_shared_carveout=*/false,
                                                        "cudaFuncSetAttribute (sm90 forward kernel)");
}

template <class Element, int kD, int kDv, bool kSparseRow>
void launch_fwd_sm90_row(const Sm90Params& p, cudaStream_t stream) {
  using Traits = Sm90Traits<Element, kD, kDv, kSparseRow>;
  configure_sm90_kernel_once<Traits>();
  // Dynamic persistent schedule: p.ctas CTAs; otherwise one CTA per tile.
  const auto grid = static_cast<unsigned>(p.counters != nullptr ? p.ctas : Sm90TileScheduler::tiles(p.base));
  if (grid == 0) return;
  flash_fwd_sm90_kernel<Traits><<<grid, Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
  check_launch("launch of the sm90 forward kernel");
}

template <class Element, int kD, int kDv, bool kSparseRow>
FwdKernelInfo fwd_sm90_kernel_info_row() {
  using Traits = Sm90Traits<Element, kD, kDv, kSparseRow>;
  configure_sm90_kernel_once<Traits>();
  return kernel_info(&flash_fwd_sm90_kernel<Traits>, Traits::kThreads, Traits::kSmemBytes);
}

}  // namespace omniattn::detail::cuda
