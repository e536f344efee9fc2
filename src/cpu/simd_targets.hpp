#pragma once
// The SIMD targets the CPU kernels are compiled for; include before any Highway header.
// Highway compiles each kernel file once per target and picks the best one the CPU has at run time.
// SSSE3/SSE4 are left out to halve compile time: x86 CPUs without AVX2 run the scalar fallback.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4)
#endif
