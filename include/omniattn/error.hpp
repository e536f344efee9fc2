#pragma once
/// @file error.hpp
/// The one exception type of omniattn: every refusal names the argument, what was expected and what was given.
#include <stdexcept>
#include <string>

namespace omniattn {

/// Thrown for bad input or an unsupported combination. Nothing is written to outputs when it is thrown.
class Error : public std::runtime_error {
 public:
  /// @param argument the offending argument ("q", "options.window_left", ...)
  /// @param expected what the library needed
  /// @param given    what it received
  Error(std::string argument, std::string expected, std::string given)
      : std::runtime_error(argument + ": expected " + expected + ", given " + given),
        argument_(std::move(argument)), expected_(std::move(expected)), given_(std::move(given)) {}

  const std::string& argument() const noexcept { return argument_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& given() const noexcept { return given_; }

 private:
  std::string argument_, expected_, given_;
};

}  // namespace omniattn
