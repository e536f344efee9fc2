#pragma once
// A host emulation of the small CUDA surface the kernels use, so that the real kernel code runs on a CPU
// (machines without a GPU, and fast iteration): each CUDA thread is a fiber (ucontext), a CTA's fibers run
// cooperatively on one OS thread, and __syncthreads / warp collectives are barriers between fibers.
// Compiled only with OMNIATTN_CUDA_EMULATION defined (tests/gpu/emulator); never part of the library.
//
// Emulated faithfully enough to check fragment layouts and synchronization:
//  - ldmatrix / mma.sync m16n8k16 / shfl.xor exchange data between the 32 lanes of a warp exactly as the
//    PTX ISA specifies (see ptx.cuh), and check alignment and bounds of every shared address;
//  - cp.async copies are deferred until the issuing thread's cp.async.wait_group retires their group, so a
//    missing wait or barrier reads stale shared memory (which starts as garbage);
//  - a barrier that not every thread reaches is reported as a deadlock.
#if !defined(OMNIATTN_CUDA_EMULATION)
#error "emulation.hpp is for host emulation builds only"
#endif

#include <ucontext.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __shared__
#define __grid_constant__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint4 {
  uint32_t x, y, z, w;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct alignas(8) uint2 {
  uint32_t x, y;
};
struct alignas(8) float2 {
  float x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
// 16-bit storage types under names of their own (the CUDA types keep theirs in the same program: no ODR clash).
struct omniattn_emulated_bf16 {
  uint16_t bits;
};
struct omniattn_emulated_f16 {
  uint16_t bits;
};
#define __nv_bfloat16 omniattn_emulated_bf16
#define __half omniattn_emulated_f16
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float __log2f(float x) { return std::log2(x); }

namespace omniattn::emu {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cuda emulation: %s\n", what);
  std::abort();
}

struct Barrier {
  int count = 0, arrived = 0;
  uint64_t generation = 0;
};

struct PendingCopy {
  uint32_t dst;
  const void* src;
  bool valid;
};

struct Fiber {
  ucontext_t context{};
  std::unique_ptr<char[]> stack;
  dim3 thread_idx;
  int tid = 0;
  bool done = false;
  const Barrier* waiting_on = nullptr;  // blocked until waiting_on->generation != waiting_generation
  uint64_t waiting_generation = 0;
  std::vector<PendingCopy> copies;  // issued, not yet landed
  std::vector<size_t> group_ends;   // copies.size() at each commit
};

// An mbarrier (bulk_copy_emulated.hpp): `phase` counts completed phases (fibers block on its generation); bulk
// copies wait in `copies` until a fiber waits for the phase and every arrival is in, then land together.
struct BulkCopy {
  uint8_t* dst;
  const void* src;
  uint32_t bytes;
};
struct Mbarrier {
  Barrier phase;
  int count = 0, arrived = 0;
  int waiters = 0;  // fibers blocked on the current phase
  int64_t tx = 0;   // bytes expected and not yet landed
  std::vector<BulkCopy> copies;
};

struct Cta {
  dim3 block_idx;
  std::map<const void*, Mbarrier> mbarriers;  // by shared-memory address
  std::vector<uint8_t> smem;
  Barrier cta_barrier;
  std::vector<Barrier> warp_barriers;
  std::vector<std::array<uint64_t, 12>> slots;  // per thread: data posted for a warp collective
  std::vector<Fiber> fibers;
  std::function<void()> body;
};

inline Cta*& cta() {
  static Cta* c = nullptr;
  return c;
}
inline Fiber*& current() {
  static Fiber* f = nullptr;
  return f;
}
inline ucontext_t& scheduler_context() {
  static ucontext_t c;
  return c;
}
inline void yield() { swapcontext(&current()->context, &scheduler_context()); }

inline void barrier_wait(Barrier& b) {
  const uint64_t gen = b.generation;
  if (++b.arrived == b.count) {
    b.arrived = 0;
    ++b.generation;
    return;
  }
  current()->waiting_on = &b;
  current()->waiting_generation = gen;
  yield();  // the scheduler resumes this fiber only once the barrier has released
  current()->waiting_on = nullptr;
}

inline int lane() { return current()->tid % 32; }
inline int warp() { return current()->tid / 32; }

/// Posts this lane's words, waits for the warp, runs `compute` (which reads other lanes' posts), waits again.
template <class Compute>
void warp_collective(std::initializer_list<uint64_t> words, Compute&& compute) {
  auto& slot = cta()->slots[current()->tid];
  int i = 0;
  for (uint64_t w : words) slot[i++] = w;
  Barrier& b = cta()->warp_barriers[warp()];
  barrier_wait(b);
  compute([&](int other_lane, int word) { return cta()->slots[warp() * 32 + other_lane][word]; });
  barrier_wait(b);
}

inline uint8_t* smem_at(uint32_t address, uint32_t bytes, uint32_t alignment, const char* what) {
  if (address % alignment != 0) fail(what);
  if (static_cast<size_t>(address) + bytes > cta()->smem.size()) fail(what);
  return cta()->smem.data() + address;
}

inline void fiber_entry() {
  cta()->body();
  current()->done = true;
  swapcontext(&current()->context, &scheduler_context());
  fail("finished fiber resumed");
}

/// Runs one CTA of `threads` threads over `body` (called by every thread). Shared memory starts as garbage.
inline void run_cta(dim3 block, int threads, size_t smem_bytes, std::function<void()> body) {
  constexpr size_t kStack = 1 << 20;
  Cta c;
  c.block_idx = block;
  c.smem.assign(smem_bytes, 0xA5);
  c.cta_barrier.count = threads;
  c.warp_barriers.resize((threads + 31) / 32);
  for (auto& b : c.warp_barriers) b.count = 32;
  c.slots.resize(threads);
  c.fibers.resize(threads);
  c.body = std::move(body);
  cta() = &c;
  for (int t = 0; t < threads; ++t) {
    Fiber& f = c.fibers[t];
    f.tid = t;
    f.thread_idx = dim3(t, 0, 0);
    f.stack.reset(new char[kStack]);
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = kStack;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiber_entry, 0);
  }
  // Schedule: always resume the lowest-numbered runnable thread. A warp thus runs ahead as far as its own
  // barriers allow before the next warp starts, which exposes a missing __syncthreads (another warp's
  // cp.async data not landed yet, or a buffer overwritten while a slower warp still reads it).
  // OMNIATTN_EMU_SCHEDULE=reverse resumes the highest-numbered runnable thread instead.
  static const bool reverse = [] {
    const char* s = std::getenv("OMNIATTN_EMU_SCHEDULE");
    return s != nullptr && std::strcmp(s, "reverse") == 0;
  }();
  for (;;) {
    Fiber* next = nullptr;
    bool all_done = true;
    for (int i = 0; i < threads; ++i) {
      Fiber& f = c.fibers[reverse ? threads - 1 - i : i];
      if (f.done) continue;
      all_done = false;
      if (f.waiting_on == nullptr || f.waiting_on->generation != f.waiting_generation) {
        next = &f;
        break;
      }
    }
    if (all_done) break;
    if (next == nullptr) fail("deadlock: a barrier that not every thread reaches");
    current() = next;
    swapcontext(&scheduler_context(), &next->context);
  }
  current() = nullptr;
  cta() = nullptr;
}

}  // namespace omniattn::emu

#define threadIdx (::omniattn::emu::current()->thread_idx)
#define blockIdx (::omniattn::emu::cta()->block_idx)

inline void __syncthreads() { omniattn::emu::barrier_wait(omniattn::emu::cta()->cta_barrier); }
// CTAs run one after another and fibers cooperatively: plain memory operations are already ordered and atomic.
inline void __threadfence() {}
inline int atomicAdd(int* address, int value) {
  const int old = *address;
  *address = old + value;
  return old;
}
inline int atomicExch(int* address, int value) {
  const int old = *address;
  *address = value;
  return old;
}
template <class T>
inline T __ldcg(const T* address) {
  return *address;
}
inline void __syncwarp() { omniattn::emu::barrier_wait(omniattn::emu::cta()->warp_barriers[omniattn::emu::warp()]); }
inline float __shfl_xor_sync(unsigned, float x, int lane_mask) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  float result = 0;
  omniattn::emu::warp_collective({bits}, [&](auto&& read) {
    const uint32_t other = static_cast<uint32_t>(read(omniattn::emu::lane() ^ lane_mask, 0));
    std::memcpy(&result, &other, 4);
  });
  return result;
}
