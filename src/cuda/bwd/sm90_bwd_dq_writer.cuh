#pragma once
// The dQ writer warp of the sm_90a backward: it walks the CTA's steps (its own BwdWalk) and adds each step's dQ,
// which the consumers staged in f32 in shared memory, into the workspace's (kBlockM, kD) f32 block with one bulk
// reduction of the whole block (cp.reduce.async.bulk .add.f32, performed at L2). The consumers hand the buffer over
// on a named barrier (kDqFullBarrier) and get it back (kDqEmptyBarrier) once the reductions have read it, so
// they run on while the reductions complete.
//
// Deterministic mode: the block's semaphore orders the KV tiles' additions (dq_turn). The writer waits for its
// turn, adds, waits until the reductions have completed, and passes the turn on. With p.dq_overlap (default) it
// takes the turn before the consumers have staged the step's dQ (their compute hides the semaphore's latency) and
// hands the buffer back once the reduction has read it, so that the completion and the release overlap the
// consumers' next step instead of stalling them: the serial order cost +49% (D = 128) and +80% (D = 64) of the
// default mode's time on an H100 (docs/kernels.md, backward log step 13). Taking the turn early cannot deadlock:
// what the CTA then waits for is its own consumers, which depend on no other CTA. The writer's own per-step work
// (the turn, the fences, the release) is on the consumers' path once it outlasts their step: each part cost 5-12%
// (docs/kernels.md, backward log step 17), hence dq_turn_fast, the .global proxy fences and no __threadfence.
// With two partial sums (kD = 64) in the deterministic mode: kDqPartials = 2 (a kernel of its own, chosen by
// BwdParams::dq_partials) adds each into an accumulator of its own (the postprocess adds them in order), so that
// every element of each gets one addition per KV tile in the turn order; kDqPartials = 1 (the default)
// has the consumers fold the second into the first before the hand-over (Sm90BwdMainloop::fold_partial_sums), behind
// a barrier across both warpgroups (docs/kernels.md, backward log steps 17, 18, 20).
#include <cuda/ptx>

#include "cuda/bwd/bwd_sparse.cuh"
#include "cuda/bwd/bwd_sync.cuh"
#include "cuda/bwd/sm90_bwd_traits.cuh"
#include "cuda/common/warpgroup.cuh"

namespace omniattn::detail::cuda {

template <class Traits>
struct Sm90BwdDqWriter {
  using T = Traits;
  static constexpr int kBlockM = T::kBlockM, kD = T::kD;

  /// Orders the writer's global accesses between the generic and the async proxy (the semaphore's acquire / release
  /// against the bulk reductions, all in global memory): the .global form; the all-state-spaces fence cost 12% of
  /// the step at D = 128.
  static __device__ __forceinline__ void proxy_fence_global() {
    ::cuda::ptx::fence_proxy_async(::cuda::ptx::space_global);
  }

  template <BwdWalkKind kKind, int kDqPartials>
  static __device__ __forceinline__ void run(const BwdParams& p, const BwdKvWork& w, uint8_t* smem, int lane) {
    static_assert(kDqPartials == 1 || (kDqPartials == T::kDqBuffers && T::kDqSplitKeys), "a partial sum per buffer");
    const SequenceMask mask = bwd_mask(p, w.seq);
    BwdWalk<kBlockM, kKind> walk;
    walk.init(p, w);
    BwdStep step;
    bool more = walk.next(p, w, mask, step);
    if (!more) return;
    float* buffer = reinterpret_cast<float*>(smem + T::kDqOffset);  // kDqBuffers x (kBlockM, kDqRowFloats)
    named_barrier_arrive(T::kDqEmptyBarrier, T::kDqHandoffThreads);  // the buffer starts free
    const bool overlap = p.deterministic && p.dq_overlap;
    while (more) {
      const int t0 = step.m * kBlockM;
      const int64_t row_block = bwd_row_block(p, w, step);
      float* block = p.dq_accum + row_block * kBlockM * kD;  // (kBlockM, kD) f32
      const int turn = p.deterministic ? dq_turn_fast(p, w, mask, step.head, step.m, t0, kBlockM, lane) : 0;
      more = walk.next(p, w, mask, step);  // (the turn and the walk read global lists: before the wait)
      auto take_turn = [&] {
        if (lane == 0) semaphore_wait(p.semaphore + row_block, turn);
        __syncwarp();
        proxy_fence_global();  // the previous turn's reductions before ours (both at L2)
      };
      if (overlap) take_turn();  // while the consumers compute this step
      named_barrier_sync(T::kDqFullBarrier, T::kDqHandoffThreads);  // the consumers staged this step's dQ
      if (p.deterministic && !overlap) take_turn();
      // One bulk reduction per buffer, every row (rows past q_len add zeros: their P is 0; the postprocess skips
      // them). Deterministic: each buffer into an accumulator of its own (kDqPartials = 2), or the folded sum alone.
      if (lane == 0) {
        const int buffers = kDqPartials == 1 && p.deterministic ? 1 : T::kDqBuffers;
        const int64_t apart = kDqPartials > 1 ? p.dq_partial_floats : 0;
        for (int b = 0; b < buffers; ++b)
          bulk_reduce_add_f32(block + b * apart, smem_address(buffer + b * (T::kDqBufferBytes / 4)),
                              T::kDqBufferBytes);
        bulk_commit();
      }
      __syncwarp();
      auto pass_turn = [&] {
        bulk_wait_all();                    // the additions are done at L2 ...
        proxy_fence_global();  // ... ordered before the generic release below
        __syncwarp();
        // No __threadfence (a fence.sc.gpu, 9% of the step at D = 128): the release store orders what this thread
        // has seen, the completed reductions included.
        if (lane == 0) semaphore_release(p.semaphore + row_block, turn + 1);
      };
      if (p.deterministic && !overlap) pass_turn();
      else bulk_wait_read();  // the buffer may be written again
      __syncwarp();  // bar.arrive is warp-aligned
      if (more) named_barrier_arrive(T::kDqEmptyBarrier, T::kDqHandoffThreads);
      if (overlap) pass_turn();  // while the consumers compute the next step
      __syncwarp();
    }
    bulk_wait_all();  // the shared source outlives the reductions
  }
};

}  // namespace omniattn::detail::cuda
