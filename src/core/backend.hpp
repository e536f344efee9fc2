#pragma once
// The backend interface: every implementation says whether it can run a call (and why not),
// and runs it. Dispatch (dispatch.cpp) is the only place that chooses among them.
#include <optional>
#include <string>
#include <vector>

#include "core/problem.hpp"

namespace omniattn::detail {

class BackendImpl {
 public:
  virtual ~BackendImpl() = default;
  virtual Backend id() const = 0;
  /// Compiled in and its device present (a CUDA GPU of the right arch for CUDA backends).
  virtual bool available() const = 0;
  /// One line: dtypes, head dims, features.
  virtual std::string summary() const = 0;
  /// std::nullopt if it runs this call, else why not (a sentence naming the unsupported option).
  virtual std::optional<std::string> can_run(const ForwardProblem& p) const = 0;
  virtual std::optional<std::string> can_run(const BackwardProblem& p) const = 0;
  virtual void forward(const ForwardProblem& p) const = 0;
  virtual void backward(const BackwardProblem& p) const = 0;
};

/// Backends in order of preference for Backend::automatic (fastest first).
const std::vector<const BackendImpl*>& backends();

// Each backend's single instance (defined next to its kernels).
const BackendImpl& reference_backend();
const BackendImpl& cpu_backend();
#if OMNIATTN_WITH_CUDA
const BackendImpl& cuda_sm80_backend();
#endif
#if OMNIATTN_WITH_SM90
const BackendImpl& cuda_sm90_backend();
#endif

}  // namespace omniattn::detail
