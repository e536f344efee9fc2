#pragma once
// The sm_90a forward kernel: warp-specialized CTA (producer warpgroup 0 issues TMA loads; consumer warpgroups
// 1..kConsumers compute), and its launch. Included only by the per-head-dim instantiation files
// (sm90_instantiate_d*.cu), which are compiled for sm_90a alone.
#include <atomic>

#include "cuda/common/cuda_check.hpp"
#include "cuda/flash/sm90_consumer.cuh"
#include "cuda/flash/sm90_epilogue.cuh"
#include "cuda/flash/sm90_launch.hpp"
#include "cuda/flash/sm90_producer.cuh"

namespace omniattn::detail::cuda {

using Sm90Scheduler = LongestFirstScheduler;

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, 1) flash_fwd_sm90_kernel(const __grid_constant__ Sm90Params p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  CtaWork work;
  if (!make_cta_work<Traits::kBlockM, Traits::kBlockN>(p.base, Sm90Scheduler::tile(p.base), work)) return;
  // 128-byte swizzle atoms are 1024 bytes: align the tiles (kSmemBytes holds the slack).
  uint8_t* smem = dynamic_smem();
  smem += (1024 - (smem_address(smem) & 1023)) & 1023;
  auto& bar = *reinterpret_cast<Sm90Barriers<Traits::kStages>*>(smem + Traits::kBarrierOffset);
  constexpr uint32_t kConsumerWarps = 4 * Traits::kConsumers;

  if (threadIdx.x == 0) {
    ::cuda::ptx::mbarrier_init(&bar.q_full, 1);
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
    if (threadIdx.x == 0) Sm90Producer<Traits>::run(p, work, smem, bar);
  } else {
    claim_registers<Traits::kConsumerRegs>();
    typename Traits::OAcc o;  // (16 rows, kDv) f32 per warp
    o.fill(0.f);
    OnlineSoftmax<2> softmax;
    softmax.init();
    Sm90Consumer<Traits>::run(p, work, smem, bar, warpgroup - 1, o, softmax);
    Sm90Epilogue<Traits>::store(p, work, smem, warpgroup - 1, o, softmax);
  }
#endif
}

// More than 48 KB of dynamic shared memory must be opted into, once per device and kernel.
template <class Traits>
void configure_sm90_kernel_once() {
  static std::atomic<uint64_t> configured_devices{0};
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (bit != 0 && (configured_devices.load(std::memory_order_acquire) & bit)) return;
  check(cudaFuncSetAttribute(&flash_fwd_sm90_kernel<Traits>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             Traits::kSmemBytes),
        "cudaFuncSetAttribute (dynamic shared memory of the sm90 forward kernel)");
  configured_devices.fetch_or(bit, std::memory_order_acq_rel);
}

template <class Element, int kD, int kDv>
void launch_fwd_sm90(const Sm90Params& p, cudaStream_t stream) {
  using Traits = Sm90Traits<Element, kD, kDv>;
  configure_sm90_kernel_once<Traits>();
  flash_fwd_sm90_kernel<Traits><<<Sm90Scheduler::grid(p.base), Traits::kThreads, Traits::kSmemBytes, stream>>>(p);
  check_launch("launch of the sm90 forward kernel");
}

template <class Element, int kD, int kDv>
FwdKernelInfo fwd_sm90_kernel_info() {
  using Traits = Sm90Traits<Element, kD, kDv>;
  configure_sm90_kernel_once<Traits>();
  const auto kernel = &flash_fwd_sm90_kernel<Traits>;
  FwdKernelInfo info;
  cudaFuncAttributes attributes{};
  check(cudaFuncGetAttributes(&attributes, kernel), "cudaFuncGetAttributes");
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&info.ctas_per_sm, kernel, Traits::kThreads, Traits::kSmemBytes),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  info.registers = attributes.numRegs;
  info.local_bytes = static_cast<int>(attributes.localSizeBytes);
  info.smem_bytes = Traits::kSmemBytes;
  info.threads = Traits::kThreads;
  return info;
}

}  // namespace omniattn::detail::cuda
