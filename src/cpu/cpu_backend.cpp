// The fast CPU backend: Highway SIMD kernels (runtime-dispatched) on OpenMP threads.
#include <fmt/format.h>

#include "core/backend.hpp"
#include "cpu/kernels.hpp"

namespace omniattn::detail {
namespace {

std::optional<std::string> refuse(const Problem& p) {
  if (!p.device.is_cpu()) return fmt::format("runs on CPU tensors, given {} tensors", to_string(p.device));
  switch (p.dtype) {
    case DType::f32:
    case DType::bf16:
    case DType::f16: return std::nullopt;
    case DType::f64: return std::string("f64 runs on the reference backend (the CPU kernels compute in f32)");
    default: return fmt::format("dtype {} is not supported (f32, bf16, f16)", to_string(p.dtype));
  }
}

class CpuBackend final : public BackendImpl {
 public:
  Backend id() const override { return Backend::cpu; }
  bool available() const override { return true; }
  std::string summary() const override {
    return fmt::format(
        "tiled online-softmax (FlashAttention) forward + deterministic backward, {} SIMD via Highway, OpenMP "
        "threads; f32/bf16/f16 with f32 accumulation; head dims 1..512 (Dk != Dv); every mask and score option; block-sparse masks (listed blocks only)",
        cpu::simd_target());
  }
  std::optional<std::string> can_run(const ForwardProblem& p) const override { return refuse(p); }
  std::optional<std::string> can_run(const BackwardProblem& p) const override { return refuse(p); }
  void forward(const ForwardProblem& p) const override { cpu::forward(p); }
  void backward(const BackwardProblem& p) const override { cpu::backward(p); }
};

}  // namespace

const BackendImpl& cpu_backend() {
  static const CpuBackend instance;
  return instance;
}

}  // namespace omniattn::detail
