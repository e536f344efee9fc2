#pragma once
// mbarriers and bulk (TMA-unit) copies from global to shared memory, through CCCL's cuda::ptx (sm_90). A bulk copy
// completes on an mbarrier: the threads that issue copies arrive on it with the bytes they expect, and readers wait
// for the barrier's phase. Compiled for every architecture the including file targets: below sm_90 the calls trap
// (hosts enable the paths that use them on sm_90 devices only). Host emulation: bulk_copy_emulated.hpp.
#if defined(OMNIATTN_CUDA_EMULATION)
#include "cuda/common/bulk_copy_emulated.hpp"
#else
#include <cuda/ptx>

#include <cstdint>

namespace omniattn::detail::cuda {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define OMNIATTN_SM90_ONLY(...) __trap()
#else
#define OMNIATTN_SM90_ONLY(...) __VA_ARGS__
#endif

/// Initializes `bar` for `count` arrivals per phase; the init is made visible to the bulk-copy unit (then a CTA
/// barrier before any use).
__device__ __forceinline__ void mbarrier_init_visible(uint64_t* bar, uint32_t count) {
  OMNIATTN_SM90_ONLY(::cuda::ptx::mbarrier_init(bar, count);
                     ::cuda::ptx::fence_mbarrier_init(::cuda::ptx::sem_release, ::cuda::ptx::scope_cluster));
}
/// Waits until the phase of parity `parity` of `bar` has completed.
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  OMNIATTN_SM90_ONLY(while (!::cuda::ptx::mbarrier_try_wait_parity(bar, parity)){});
}
/// Arrives on `bar`, adding `bytes` to the bytes its phase waits for.
__device__ __forceinline__ void mbarrier_expect_bytes(uint64_t* bar, uint32_t bytes) {
  OMNIATTN_SM90_ONLY(::cuda::ptx::mbarrier_arrive_expect_tx(::cuda::ptx::sem_release, ::cuda::ptx::scope_cta,
                                                            ::cuda::ptx::space_shared, bar, bytes));
}
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
  OMNIATTN_SM90_ONLY((void)::cuda::ptx::mbarrier_arrive(bar));
}
/// Copies `bytes` (a multiple of 16, both addresses 16-byte aligned) from global to shared memory with the TMA unit;
/// completes on `bar` (count the bytes in its expect_tx).
__device__ __forceinline__ void bulk_load(void* smem_dst, const void* global_src, uint32_t bytes, uint64_t* bar) {
  OMNIATTN_SM90_ONLY(::cuda::ptx::cp_async_bulk(::cuda::ptx::space_cluster, ::cuda::ptx::space_global, smem_dst,
                                                global_src, bytes, bar));
}

/// Orders this thread's earlier generic-proxy writes to shared memory before later bulk copies (async proxy) into
/// the same bytes (issued by any thread after a CTA barrier).
__device__ __forceinline__ void fence_shared_for_bulk() {
  OMNIATTN_SM90_ONLY(::cuda::ptx::fence_proxy_async(::cuda::ptx::space_shared));
}

#undef OMNIATTN_SM90_ONLY

}  // namespace omniattn::detail::cuda
#endif
