// omniattn._C: the thin nanobind layer over the C++ API. Outputs are allocated by the Python package (with the
// caller's framework), so this module never owns memory and depends on no framework's C++ ABI.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>

#include "bindings.hpp"
#include "dlpack_view.hpp"
#include "mask_object.hpp"
#include "omniattn/attention.hpp"
#include "omniattn/error.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace omniattn::python {

Backend parse_backend(const std::string& name) {
  if (name == "auto" || name == "automatic") return Backend::automatic;
  for (Backend b : {Backend::reference, Backend::cpu, Backend::cuda_sm80, Backend::cuda_sm90})
    if (name == to_string(b)) return b;
  throw nb::value_error(("backend: expected 'auto', 'reference', 'cpu', 'cuda_sm80' or 'cuda_sm90', given '" +
                         name + "'").c_str());
}

// Options shared by forward and backward, in the order of their keyword arguments.
AttentionOptions make_options(bool causal, int64_t window_left, int64_t window_right, int64_t sinks, double softcap,
                              std::optional<double> scale, const std::optional<Array>& alibi_slopes,
                              const std::optional<Array>& sink_logits, const std::optional<Array>& cu_seqlens_q,
                              const std::optional<Array>& cu_seqlens_k, const std::optional<Array>& seqused_k,
                              const std::string& backend, bool deterministic, uintptr_t stream) {
  AttentionOptions o;
  o.causal = causal;
  o.window_left = window_left;
  o.window_right = window_right;
  o.sinks = sinks;
  o.softcap = softcap;
  o.softmax_scale = scale;
  o.alibi_slopes = to_view(alibi_slopes, "alibi_slopes");
  o.sink_logits = to_view(sink_logits, "sink_logits");
  o.cu_seqlens_q = to_view(cu_seqlens_q, "cu_seqlens_q");
  o.cu_seqlens_k = to_view(cu_seqlens_k, "cu_seqlens_k");
  o.seqused_k = to_view(seqused_k, "seqused_k");
  o.backend = parse_backend(backend);
  o.deterministic = deterministic;
  o.cuda_stream = reinterpret_cast<void*>(stream);
  return o;
}

namespace {

void forward(const Array& q, const Array& k, const Array& v, const OutArray& out, const std::optional<OutArray>& lse,
             bool causal, int64_t window_left, int64_t window_right, int64_t sinks, double softcap,
             std::optional<double> scale, const std::optional<Array>& alibi_slopes,
             const std::optional<Array>& sink_logits, const std::optional<Array>& cu_seqlens_q,
             const std::optional<Array>& cu_seqlens_k, const std::optional<Array>& seqused_k,
             const std::string& backend, bool deterministic, uintptr_t stream, PyBlockMask* block_mask) {
  AttentionOptions o = make_options(causal, window_left, window_right, sinks, softcap, scale, alibi_slopes,
                                    sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k, backend, deterministic,
                                    stream);
  const TensorView qv = to_view(q, "q"), kv = to_view(k, "k"), vv = to_view(v, "v");
  if (block_mask) o.block_mask = block_mask->view_for(qv.device);  // uploads before the GIL is released
  const ForwardOutputs outs{to_view(out, "out"), to_view(lse, "lse")};
  nb::gil_scoped_release unlocked;  // the arrays stay referenced by the caller's frame
  attention_forward(qv, kv, vv, outs, o);
}

void backward(const Array& q, const Array& k, const Array& v, const Array& out, const Array& lse, const Array& dout,
              const OutArray& dq, const OutArray& dk, const OutArray& dv, const std::optional<OutArray>& dsink_logits,
              bool causal, int64_t window_left, int64_t window_right, int64_t sinks, double softcap,
              std::optional<double> scale, const std::optional<Array>& alibi_slopes,
              const std::optional<Array>& sink_logits, const std::optional<Array>& cu_seqlens_q,
              const std::optional<Array>& cu_seqlens_k, const std::optional<Array>& seqused_k,
              const std::string& backend, bool deterministic, uintptr_t stream, PyBlockMask* block_mask) {
  AttentionOptions o = make_options(causal, window_left, window_right, sinks, softcap, scale, alibi_slopes,
                                    sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k, backend, deterministic,
                                    stream);
  const TensorView qv = to_view(q, "q"), kv = to_view(k, "k"), vv = to_view(v, "v");
  if (block_mask) o.block_mask = block_mask->view_for(qv.device);
  const TensorView ov = to_view(out, "out"), lv = to_view(lse, "lse"), dov = to_view(dout, "dout");
  const BackwardOutputs grads{to_view(dq, "dq"), to_view(dk, "dk"), to_view(dv, "dv"),
                              to_view(dsink_logits, "dsink_logits")};
  nb::gil_scoped_release unlocked;
  attention_backward(qv, kv, vv, ov, lv, dov, grads, o);
}

// (name, available, summary) for every backend of this build.
std::vector<std::tuple<std::string, bool, std::string>> backends() {
  std::vector<std::tuple<std::string, bool, std::string>> out;
  for (const BackendStatus& s : list_backends()) out.emplace_back(s.name, s.available, s.summary);
  return out;
}

}  // namespace
}  // namespace omniattn::python

NB_MODULE(_C, m) {
  using namespace omniattn::python;
  m.doc() = "omniattn C++ bindings (use the omniattn package, not this module)";
  m.attr("__version__") = OMNIATTN_VERSION_STRING;
  m.attr("with_cuda") = static_cast<bool>(OMNIATTN_WITH_CUDA);
  // torch.compile's caches keep the BlockMasks a compiled graph uses until interpreter exit, after this module's
  // teardown: nanobind would report them as leaks.
  nb::set_leak_warnings(false);

  // omniattn::Error keeps its message. "No backend runs this call" (and the CUDA append's or a CPU-only build's
  // refusal) is an unsupported combination (NotImplementedError); every other refusal names a bad argument
  // (ValueError).
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const omniattn::Error& e) {
      const std::string& arg = e.argument();
      const bool unsupported = arg == "options.backend" || arg == "cache" || arg == "DeviceBlockMask::upload";
      PyErr_SetString(unsupported ? PyExc_NotImplementedError : PyExc_ValueError, e.what());
    }
  });

  const auto options = [](auto... leading) {
    return std::make_tuple(leading..., nb::kw_only(), "causal"_a = false, "window_left"_a = -1,
                           "window_right"_a = -1, "sinks"_a = 0, "softcap"_a = 0.0, "scale"_a = nb::none(),
                           "alibi_slopes"_a = nb::none(), "sink_logits"_a = nb::none(),
                           "cu_seqlens_q"_a = nb::none(), "cu_seqlens_k"_a = nb::none(), "seqused_k"_a = nb::none(),
                           "backend"_a = "auto", "deterministic"_a = false, "stream"_a = 0,
                           "block_mask"_a.none() = nb::none());
  };
  std::apply([&](auto... a) { m.def("forward", &forward, a..., "Writes out (and lse) for q, k, v."); },
             options("q"_a, "k"_a, "v"_a, "out"_a, "lse"_a.none()));
  std::apply([&](auto... a) { m.def("backward", &backward, a..., "Writes dq, dk, dv (and dsink_logits)."); },
             options("q"_a, "k"_a, "v"_a, "out"_a, "lse"_a, "dout"_a, "dq"_a, "dk"_a, "dv"_a,
                     "dsink_logits"_a.none()));
  m.def("backends", &backends, "(name, available, summary) for every backend of this build.");
  bind_sparse(m);
  bind_decode(m);
}
