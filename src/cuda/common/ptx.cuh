#pragma once
// Thin wrappers over the sm_80 PTX the kernels are built from: cp.async (global -> shared, 16 bytes),
// ldmatrix (shared -> register fragments), mma.sync m16n8k16 (16-bit inputs, f32 accumulate), ex2.
// Fragment layouts follow the PTX ISA ("Matrix Fragments for mma.m16n8k16"); with
// g = lane / 4 (group) and t = lane % 4 (thread in group):
//   A (16x16, row-major)   a[0]: (g, 2t..2t+1)  a[1]: (g+8, 2t..)  a[2]: (g, 2t+8..)  a[3]: (g+8, 2t+8..)
//   B (16x8, "col")        b[0]: (k = 2t..2t+1, n = g)              b[1]: (k = 2t+8.., n = g)
//   C/D (16x8, f32)        d[0..1]: (g, 2t..2t+1)                   d[2..3]: (g+8, 2t..2t+1)
#if defined(OMNIATTN_CUDA_EMULATION)
#include "cuda/common/ptx_emulated.hpp"  // host emulation (tests on machines without a GPU)
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace omniattn::detail::cuda {

/// The CTA's dynamic shared memory (sized at launch).
__device__ __forceinline__ uint8_t* dynamic_smem() {
  extern __shared__ __align__(16) uint8_t dynamic_smem_bytes[];
  return dynamic_smem_bytes;
}

/// 32-bit shared-state-space address of a pointer into shared memory (what PTX shared operands take).
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---------------------------------------------------------------------------------------------------------
// cp.async: 16-byte global -> shared copies that bypass registers (and L1: .cg). With `valid` false the
// 16 destination bytes are zero-filled and nothing is read (rows past the end of a sequence).
__device__ __forceinline__ void cp_async_16(uint32_t smem_dst, const void* gmem_src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_dst), "l"(gmem_src), "r"(src_bytes)
               : "memory");
}
/// Closes the group of cp.async issued so far by this thread.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/// Waits until at most `kPending` groups of this thread are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// ---------------------------------------------------------------------------------------------------------
// ldmatrix: four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, and register i of
// every lane receives matrix i's (row g, cols 2t..2t+1), or with .trans its (rows 2t..2t+1, col g).
// volatile: the shared memory behind an address changes between KV tiles; the loads must not be hoisted.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_src) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_src));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem_src) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_src));
}

// ---------------------------------------------------------------------------------------------------------
// mma.sync m16n8k16, D = A * B + D with f32 accumulators, for each 16-bit input type.
template <class Element>
struct Mma16816;

template <>
struct Mma16816<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <>
struct Mma16816<__half> {
  static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

// ---------------------------------------------------------------------------------------------------------
/// Two floats rounded (to nearest even) into one register of 16-bit values, `lo` in the low half
/// (the lower column index of a fragment pair).
template <class Element>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi);

template <>
__device__ __forceinline__ uint32_t pack_pair<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack_pair<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

/// 2^x on the special-function unit (relative error ~2^-22; ex2(-inf) = +0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace omniattn::detail::cuda
#endif  // OMNIATTN_CUDA_EMULATION
