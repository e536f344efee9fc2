#pragma once
// Experiment switches read from the environment (A/B runs of one binary): an integer, or an exact string.
#include <cstdlib>
#include <cstring>

namespace omniattn::detail::cuda {

/// The integer value of `name`, or `fallback` when it is unset or empty.
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

/// Whether `name` is set to exactly `value`.
inline bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

}  // namespace omniattn::detail::cuda
