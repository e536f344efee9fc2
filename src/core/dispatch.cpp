// The one dispatch layer: picks the backend for a call, or explains why none runs it.
#include <fmt/format.h>

#include "core/backend.hpp"
#include "core/validate.hpp"
#include "omniattn/version.hpp"

namespace omniattn {
namespace detail {

const std::vector<const BackendImpl*>& backends() {
  static const std::vector<const BackendImpl*> list = {
#if OMNIATTN_WITH_SM90
      &cuda_sm90_backend(),
#endif
#if OMNIATTN_WITH_CUDA
      &cuda_sm80_backend(),
#endif
      &cpu_backend(), &reference_backend()};
  return list;
}

namespace {

bool on_its_device(const BackendImpl& b, const Problem& p) {
  const bool cuda = b.id() == Backend::cuda_sm80 || b.id() == Backend::cuda_sm90;
  return cuda == p.device.is_cuda();
}

template <class P>
std::optional<std::string> refusal(const BackendImpl& b, const P& p) {
  if (!b.available()) return std::string("not available in this build or on this machine");
  if (!on_its_device(b, p)) return fmt::format("does not run on {} tensors", to_string(p.device));
  return b.can_run(p);
}

// The backend that runs `p`: the requested one (or an Error saying why it cannot), else the first that can.
template <class P>
const BackendImpl& choose(const P& p) {
  std::string reasons;
  for (const BackendImpl* b : backends()) {
    if (p.requested != Backend::automatic && p.requested != b->id()) continue;
    auto why = refusal(*b, p);
    if (!why) return *b;
    reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : "; ", to_string(b->id()), *why);
  }
  if (reasons.empty()) reasons = to_string(p.requested) + " is not compiled in";
  throw Error("options.backend", "a backend that supports this call", reasons);
}

}  // namespace
}  // namespace detail

void attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                       const ForwardOutputs& outputs, const AttentionOptions& options) {
  const auto p = detail::make_forward_problem(q, k, v, outputs, options);
  detail::choose(p).forward(p);
}

void attention_backward(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                        const TensorView& lse, const TensorView& dout, const BackwardOutputs& grads,
                        const AttentionOptions& options) {
  const auto p = detail::make_backward_problem(q, k, v, out, lse, dout, grads, options);
  detail::choose(p).backward(p);
}

std::vector<BackendStatus> list_backends() {
  std::vector<BackendStatus> out;
  for (const auto* b : detail::backends()) out.push_back({b->id(), to_string(b->id()), b->available(), b->summary()});
  return out;
}

std::vector<std::pair<Backend, std::optional<std::string>>> explain_forward(const TensorView& q, const TensorView& k,
                                                                            const TensorView& v,
                                                                            const ForwardOutputs& outputs,
                                                                            const AttentionOptions& options) {
  const auto p = detail::make_forward_problem(q, k, v, outputs, options);
  std::vector<std::pair<Backend, std::optional<std::string>>> out;
  for (const auto* b : detail::backends()) out.emplace_back(b->id(), detail::refusal(*b, p));
  return out;
}

}  // namespace omniattn
