#pragma once
/// @file version.hpp
#include <string>
namespace omniattn {
/// Library version, "MAJOR.MINOR.PATCH".
inline constexpr const char* kVersion = "0.1.0";
/// Build facts: compiled CUDA archs, SIMD targets compiled in, compiler.
std::string build_info();
}  // namespace omniattn
