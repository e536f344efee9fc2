#pragma once
// Entry points of the CUDA decode path (src/cuda/decode), called by the dispatch in decode_api.cpp.
// Declared only in CUDA builds; a CPU-only build refuses CUDA caches before reaching them.
#include <cstdint>
#include <optional>
#include <string>

#include "decode/decode_problem.hpp"

#if OMNIATTN_WITH_CUDA
namespace omniattn::detail::decode_cuda {

/// Copies `bytes` of device memory to the host, ordered after `stream`'s work (synchronizes with it).
void download(void* host, const void* device, int64_t bytes, int device_index, void* stream);
/// Adds `delta` to n int32 device values (the cache lengths after an append), on `stream`.
void add_to_lengths(int32_t* lens, int64_t n, int32_t delta, int device_index, void* stream);
/// std::nullopt when the CUDA kernel runs this call, else why not.
std::optional<std::string> refusal(const DecodeProblem& p);
std::optional<std::string> append_refusal(const AppendProblem& p);
void run(const DecodeProblem& p);
void append(const AppendProblem& p);

}  // namespace omniattn::detail::decode_cuda
#endif
