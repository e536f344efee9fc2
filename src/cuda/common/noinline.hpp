#pragma once
// OMNIATTN_NOINLINE: keeps a device function out of line (a large, rarely taken path whose inlined registers would
// make the caller spill), also under the host emulation's compiler.
#if defined(__CUDACC__)
#define OMNIATTN_NOINLINE __noinline__
#else
#define OMNIATTN_NOINLINE __attribute__((noinline))
#endif
