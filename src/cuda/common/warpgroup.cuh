#pragma once
// sm_90a warpgroup primitives: wgmma shared-memory descriptors and fences, register reallocation
// (setmaxnreg), named barriers, and the mbarrier / TMA calls of the load pipeline (through CCCL's cuda::ptx).
// Compiled only for sm_90a (the files that include it are built for that architecture alone).
#include <cuda/ptx>

#include <cstdint>

#include "cuda/common/bulk_copy.cuh"
#include "cuda/common/wgmma_ops.cuh"

namespace omniattn::detail::cuda {

// ---------------------------------------------------------------------------------------------------------
// Shared-memory matrix descriptors (PTX ISA "Matrix Descriptor Format"): start address, leading and stride
// byte offsets (all >> 4) and the swizzle mode. Every operand tile here is 128-byte swizzled: rows of 64
// 16-bit elements (128 bytes), in atoms of 8 rows (1024 bytes, 1024-aligned) whose 16-byte chunks are permuted
// by chunk ^= row % 8 -- the layout TMA writes with CU_TENSOR_MAP_SWIZZLE_128B.
constexpr uint64_t kSwizzle128B = 1;

__device__ __forceinline__ uint64_t smem_descriptor(uint32_t smem_addr, uint32_t leading_bytes, uint32_t stride_bytes) {
  return (uint64_t{(smem_addr & 0x3FFFFu) >> 4}) | (uint64_t{(leading_bytes >> 4) & 0x3FFFu} << 16) |
         (uint64_t{(stride_bytes >> 4) & 0x3FFFu} << 32) | (kSwizzle128B << 62);
}
/// K-major operand (rows = M or N, 64 contiguous K elements per 128-byte row): 8-row atoms 1024 bytes apart;
/// the 16-element K slice kk of the row is at +32*kk bytes (the hardware applies the swizzle).
__device__ __forceinline__ uint64_t kmajor_descriptor(uint32_t smem_addr) {
  return smem_descriptor(smem_addr, 16, 1024);
}
/// MN-major operand (rows = K, 64 contiguous N elements per 128-byte row): 8-row (K) atoms 1024 bytes apart,
/// the next 64 N elements `column_block_bytes` further (the next TMA box).
__device__ __forceinline__ uint64_t mnmajor_descriptor(uint32_t smem_addr, uint32_t column_block_bytes) {
  return smem_descriptor(smem_addr, column_block_bytes, 1024);
}

/// Byte offset of element (row, col) (col < 64) in a 128-byte-swizzled box of 16-bit elements.
__device__ __forceinline__ uint32_t swizzled_offset(int row, int col) {
  return static_cast<uint32_t>(row * 128 + ((((col >> 3) ^ row) & 7) << 4) + (col & 7) * 2);
}

// ---------------------------------------------------------------------------------------------------------
// wgmma ordering. fence: registers written by ordinary instructions are visible to the next wgmma;
// commit/wait: close the group of wgmma issued so far / wait until at most N groups are pending.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
/// Orders this thread's generic-proxy writes to shared memory (st.shared, cp.async) before later async-proxy
/// reads (wgmma operands, TMA stores); a barrier then publishes them to the other threads.
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/// Pins accumulator registers in place across an asynchronous wgmma (the compiler must not move their reads
/// or writes over the issue / wait points).
template <int kCount>
__device__ __forceinline__ void fence_registers(float* r) {
#pragma unroll
  for (int i = 0; i < kCount; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// ---------------------------------------------------------------------------------------------------------
// Register reallocation between warpgroups (needs __launch_bounds__(threads, 1)).
template <int kRegs>
__device__ __forceinline__ void release_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void claim_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

/// Barrier `id` (1..15; 0 is __syncthreads) among `threads` threads.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---------------------------------------------------------------------------------------------------------
// TMA (mbarrier_wait, mbarrier_expect_bytes, mbarrier_arrive and bulk_load: bulk_copy.cuh).
/// Loads the box at `coords` (innermost first) of a 4-D tensor map into shared memory; completes on `bar`.
__device__ __forceinline__ void tma_load_4d(void* smem_dst, const void* tensor_map, int c0, int c1, int c2, int c3,
                                            uint64_t* bar) {
  const int32_t coords[4] = {c0, c1, c2, c3};
  ::cuda::ptx::cp_async_bulk_tensor(::cuda::ptx::space_cluster, ::cuda::ptx::space_global, smem_dst, tensor_map,
                                    coords, bar);
}
/// *global += *shared, element-wise over `bytes` of f32 (16-byte aligned, a multiple of 16), done by the TMA
/// unit at L2 (one bulk reduction instead of one atomic per element); the shared source must stay untouched until
/// bulk_wait_read says it has been read. Groups: bulk_commit closes the thread's pending bulk operations.
__device__ __forceinline__ void bulk_reduce_add_f32(float* global, uint32_t smem_src, uint32_t bytes) {
  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(global),
               "r"(smem_src), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
/// Waits until this thread's bulk groups have finished reading shared memory.
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
/// Waits until this thread's bulk groups have completed (their global writes done).
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

/// Stores a shared-memory box to a 4-D tensor map (elements outside the tensor are not written).
__device__ __forceinline__ void tma_store_4d(const void* tensor_map, int c0, int c1, int c2, int c3,
                                             const void* smem_src) {
  const int32_t coords[4] = {c0, c1, c2, c3};
  ::cuda::ptx::cp_async_bulk_tensor(::cuda::ptx::space_global, ::cuda::ptx::space_shared, tensor_map, coords,
                                    smem_src);
}

}  // namespace omniattn::detail::cuda
