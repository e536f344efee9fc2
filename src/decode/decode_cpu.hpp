#pragma once
// Backend::cpu of attention_decode and the CPU kv_cache_append.
#include <optional>
#include <string>

#include "decode/decode_problem.hpp"

namespace omniattn::detail::cpu_decode {

/// std::nullopt when the CPU path runs this call, else why not.
std::optional<std::string> refusal(const DecodeProblem& p);
void run(const DecodeProblem& p);
/// Writes the new tokens (rotated when asked) into the pages; advances the lengths when asked.
void append(const AppendProblem& p);

}  // namespace omniattn::detail::cpu_decode
