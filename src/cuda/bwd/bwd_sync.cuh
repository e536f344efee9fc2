#pragma once
// Global-memory synchronization of the backward: f32 atomic adds into the dQ accumulator, and the per-block
// semaphore of the deterministic mode (acquire / release, gpu scope). Host emulation: CTAs run one after
// another, so an add is a plain add and a semaphore that is not yet at the awaited value is an ordering bug
// (the tile it waits for would run later, or never): the emulator aborts instead of spinning.
#include <cstdint>

#include "cuda/common/ptx.cuh"

namespace omniattn::detail::cuda {

#if defined(OMNIATTN_CUDA_EMULATION)
inline void atomic_add_f32(float* address, float value) { *address += value; }
inline void semaphore_wait(const int32_t* semaphore, int32_t value) {
  if (*semaphore != value) emu::fail("deterministic dQ: a KV tile waits for one that has not run before it");
}
inline void semaphore_release(int32_t* semaphore, int32_t value) { *semaphore = value; }
inline void thread_fence() {}
#else
/// *address += value at L2 (a RED instruction: the result is not returned).
__device__ __forceinline__ void atomic_add_f32(float* address, float value) { atomicAdd(address, value); }
/// Spins until *semaphore == value (acquire: later reads see what the releasing CTA wrote before it).
__device__ __forceinline__ void semaphore_wait(const int32_t* semaphore, int32_t value) {
  int32_t now;
  for (;;) {
    asm volatile("ld.acquire.gpu.global.s32 %0, [%1];\n" : "=r"(now) : "l"(semaphore) : "memory");
    if (now == value) break;
    __nanosleep(32);
  }
}
/// *semaphore = value after everything this thread wrote before (release).
__device__ __forceinline__ void semaphore_release(int32_t* semaphore, int32_t value) {
  asm volatile("st.release.gpu.global.s32 [%0], %1;\n" ::"l"(semaphore), "r"(value) : "memory");
}
__device__ __forceinline__ void thread_fence() { __threadfence(); }
#endif

}  // namespace omniattn::detail::cuda
