// The reference as a backend: every option, every dtype (f64 included), CPU tensors; slow by design.
#include "core/backend.hpp"
#include "reference/reference.hpp"

namespace omniattn::detail {
namespace {

class ReferenceBackend final : public BackendImpl {
 public:
  Backend id() const override { return Backend::reference; }
  bool available() const override { return true; }
  std::string summary() const override {
    return "float64 naive oracle: f64/f32/f16/bf16, any head dims, every option, forward and backward; "
           "O(Sq*Sk) work per head, CPU tensors";
  }
  std::optional<std::string> can_run(const ForwardProblem&) const override { return std::nullopt; }
  std::optional<std::string> can_run(const BackwardProblem&) const override { return std::nullopt; }
  void forward(const ForwardProblem& p) const override { reference::forward(p); }
  void backward(const BackwardProblem& p) const override { reference::backward(p); }
};

}  // namespace

const BackendImpl& reference_backend() {
  static const ReferenceBackend instance;
  return instance;
}

}  // namespace omniattn::detail
