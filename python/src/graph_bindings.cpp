// omniattn._C.sparse: token-level graph attention on CSR graphs and permute_tokens (CPU functions of sparse.hpp).
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>

#include <optional>

#include "dlpack_view.hpp"
#include "host_arrays.hpp"
#include "omniattn/sparse.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace omniattn::python {
namespace {

AttentionOptions graph_options(std::optional<double> scale, double softcap) {
  AttentionOptions o;  // graph attention takes the score options only
  o.softmax_scale = scale;
  o.softcap = softcap;
  return o;
}

void graph_forward(const Array& q, const Array& k, const Array& v, const Array& row_offsets,
                   const Array& col_indices, const OutArray& out, const std::optional<OutArray>& lse,
                   std::optional<double> scale, double softcap) {
  const TensorView qv = to_view(q, "q"), kv = to_view(k, "k"), vv = to_view(v, "v");
  const TensorView rows = to_view(row_offsets, "row_offsets"), cols = to_view(col_indices, "col_indices");
  const ForwardOutputs outs{to_view(out, "out"), to_view(lse, "lse")};
  const AttentionOptions o = graph_options(scale, softcap);
  nb::gil_scoped_release unlocked;
  sparse::graph_attention_forward(qv, kv, vv, rows, cols, outs, o);
}

void graph_backward(const Array& q, const Array& k, const Array& v, const Array& row_offsets,
                    const Array& col_indices, const Array& out, const Array& lse, const Array& dout,
                    const OutArray& dq, const OutArray& dk, const OutArray& dv, std::optional<double> scale,
                    double softcap) {
  const TensorView qv = to_view(q, "q"), kv = to_view(k, "k"), vv = to_view(v, "v");
  const TensorView rows = to_view(row_offsets, "row_offsets"), cols = to_view(col_indices, "col_indices");
  const TensorView ov = to_view(out, "out"), lv = to_view(lse, "lse"), dov = to_view(dout, "dout");
  const BackwardOutputs grads{to_view(dq, "dq"), to_view(dk, "dk"), to_view(dv, "dv"), std::nullopt};
  const AttentionOptions o = graph_options(scale, softcap);
  nb::gil_scoped_release unlocked;
  sparse::graph_attention_backward(qv, kv, vv, rows, cols, ov, lv, dov, grads, o);
}

}  // namespace

void bind_graph(nb::module_& s) {
  s.def("graph_forward", &graph_forward, "q"_a, "k"_a, "v"_a, "row_offsets"_a, "col_indices"_a, "out"_a,
        "lse"_a.none(), nb::kw_only(), "scale"_a = nb::none(), "softcap"_a = 0.0);
  s.def("graph_backward", &graph_backward, "q"_a, "k"_a, "v"_a, "row_offsets"_a, "col_indices"_a, "out"_a, "lse"_a,
        "dout"_a, "dq"_a, "dk"_a, "dv"_a, nb::kw_only(), "scale"_a = nb::none(), "softcap"_a = 0.0);
  s.def(
      "permute_tokens",
      [](const Array& src, const OutArray& dst, const I32Host& order) {
        const TensorView sv = to_view(src, "src"), dv = to_view(dst, "dst");
        const std::vector<int32_t> o = to_vector(order);
        nb::gil_scoped_release unlocked;
        sparse::permute_tokens(sv, dv, o);
      },
      "src"_a, "dst"_a, "order"_a);
}

}  // namespace omniattn::python
