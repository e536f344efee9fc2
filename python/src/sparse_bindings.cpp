// omniattn._C.sparse: the BlockMask object, its constructors and generators (include/omniattn/sparse.hpp).
// The Python layer (omniattn/sparse.py) normalizes arguments; this file converts and forwards them.
#include <nanobind/nanobind.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "bindings.hpp"
#include "host_arrays.hpp"
#include "mask_object.hpp"
#include "omniattn/sparse.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace omniattn::python {
namespace {

using GeometryTuple = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;  // batch, heads, q, k, bq, bk

BlockMask::Geometry geometry(const GeometryTuple& t) {
  BlockMask::Geometry g;
  std::tie(g.batch, g.heads, g.q_tokens, g.k_tokens, g.block_q, g.block_k) = t;
  return g;
}

GridMask make_grid(const std::string& kind, const std::vector<int64_t>& shape, const std::vector<int64_t>& kernel,
                   const std::vector<int64_t>& dilation, const std::vector<int64_t>& stride,
                   const std::vector<bool>& causal) {
  GridMask g;
  if (kind == "neighborhood") g.kind = GridMask::Kind::neighborhood;
  else if (kind == "axial") g.kind = GridMask::Kind::axial;
  else throw nb::value_error(("grid kind: expected 'neighborhood' or 'axial', given '" + kind + "'").c_str());
  const size_t n = shape.size();
  if (n < 1 || n > 3) throw nb::value_error(("grid shape: expected 1 to 3 axes, given " + std::to_string(n)).c_str());
  if (kernel.size() != n || dilation.size() != n || stride.size() != n || causal.size() != n)
    throw nb::value_error("grid: expected kernel, dilation, stride and causal with one entry per axis of shape");
  g.ndim = static_cast<int>(n);
  for (size_t a = 0; a < n; ++a) {
    g.shape[a] = shape[a];
    g.kernel[a] = kernel[a];
    g.dilation[a] = dilation[a];
    g.stride[a] = stride[a];
    g.causal[a] = causal[a];
  }
  return g;
}

std::vector<int32_t> order_or_empty(const std::optional<I32Host>& order) {
  return order ? to_vector(*order) : std::vector<int32_t>{};
}

// The element rule of a mask built from lists or a block map; validated with the lists once everything is set.
PyBlockMask with_element(BlockMask mask, int64_t window_left, int64_t window_right, int64_t sinks, int64_t prefix,
                         const std::optional<I32Host>& head_windows, const std::optional<I32Host>& q_document,
                         const std::optional<I32Host>& k_document, const std::optional<GridMask>& grid,
                         const std::optional<I32Host>& token_order) {
  ElementMask& e = mask.element();
  e.window_left = window_left;
  e.window_right = window_right;
  e.sinks = sinks;
  e.prefix = prefix;
  if (grid) e.grid = *grid;
  if (head_windows) mask.set_head_windows(to_vector(*head_windows));
  if (q_document || k_document) {
    if (!q_document || !k_document) throw nb::value_error("q_document, k_document: expected both or neither");
    mask.set_documents(to_vector(*q_document), to_vector(*k_document));
  }
  if (token_order) mask.set_token_order(to_vector(*token_order));
  validate(mask.view());
  return PyBlockMask(std::move(mask));
}

// One CSR list of the mask as numpy arrays (copies).
nb::dict list_arrays(const BlockList& l) {
  auto copy = [](const TensorView& t) {
    const int32_t* p = t.ptr<const int32_t>();
    return to_numpy(std::vector<int32_t>(p, p + t.numel()), {static_cast<size_t>(t.numel())});
  };
  nb::dict d;
  d["num_blocks"] = copy(l.num_blocks);
  d["offsets"] = copy(l.offsets);
  d["indices"] = copy(l.indices);
  return d;
}

// Element-level visibility [batch, heads, q_tokens, k_tokens] of a call whose sequences have exactly q_tokens
// queries and k_tokens keys (block listed, and full or the element rule holds): for tests and inspection.
nb::ndarray<nb::numpy, uint8_t> to_dense(const PyBlockMask& m) {
  const BlockMaskView v = m.mask.view();
  const int64_t sq = v.q_tokens, sk = v.k_tokens, qb = v.q_blocks();
  std::vector<uint8_t> dense(static_cast<size_t>(v.batch * v.heads * sq * sk), 0);
  for (int64_t b = 0; b < v.batch; ++b)
    for (int64_t h = 0; h < v.heads; ++h)
      for (int64_t x = 0; x < qb; ++x)
        for (const BlockList* l : {&v.kv_partial, &v.kv_full}) {
          const int64_t row = (b * v.heads + h) * qb + x;
          const int32_t *off = l->offsets.ptr<const int32_t>(), *idx = l->indices.ptr<const int32_t>();
          for (int32_t e = off[row]; e < off[row + 1]; ++e)
            for (int64_t i = x * v.block_q; i < std::min(sq, (x + 1) * v.block_q); ++i)
              for (int64_t j = idx[e] * v.block_k; j < std::min(sk, (idx[e] + 1) * v.block_k); ++j)
                if (l == &v.kv_full || v.element.visible(h, i, j, sq, sk))
                  dense[static_cast<size_t>(((b * v.heads + h) * sq + i) * sk + j)] = 1;
        }
  return to_numpy(std::move(dense), {static_cast<size_t>(v.batch), static_cast<size_t>(v.heads),
                                     static_cast<size_t>(sq), static_cast<size_t>(sk)});
}

void bind_mask_class(nb::module_& s) {
  nb::class_<GridMask>(s, "Grid")
      .def("__init__",
           [](GridMask* g, const std::string& kind, const std::vector<int64_t>& shape,
              const std::vector<int64_t>& kernel, const std::vector<int64_t>& dilation,
              const std::vector<int64_t>& stride, const std::vector<bool>& causal) {
             new (g) GridMask(make_grid(kind, shape, kernel, dilation, stride, causal));
           },
           "kind"_a, "shape"_a, "kernel"_a, "dilation"_a, "stride"_a, "causal"_a)
      .def_prop_ro("tokens", &GridMask::tokens);

  nb::class_<PyBlockMask>(s, "BlockMask")
      .def_prop_ro("geometry",
                   [](const PyBlockMask& m) {
                     const BlockMask::Geometry& g = m.mask.geometry();
                     return GeometryTuple{g.batch, g.heads, g.q_tokens, g.k_tokens, g.block_q, g.block_k};
                   })
      .def_prop_ro("listed_blocks", [](const PyBlockMask& m) { return m.mask.listed_blocks(); })
      .def_prop_ro("density", [](const PyBlockMask& m) { return m.mask.density(); })
      .def_prop_ro("token_order",
                   [](const PyBlockMask& m) -> nb::object {
                     const std::vector<int32_t>& o = m.mask.token_order();
                     if (o.empty()) return nb::none();
                     return nb::cast(to_numpy(o, {o.size()}));
                   })
      .def("block_map",
           [](const PyBlockMask& m) {
             const BlockMask::Geometry& g = m.mask.geometry();
             std::vector<uint8_t> map;
             for (BlockMask::Block b : m.mask.to_block_map()) map.push_back(static_cast<uint8_t>(b));
             return to_numpy(std::move(map), {static_cast<size_t>(g.batch), static_cast<size_t>(g.heads),
                                              static_cast<size_t>(g.q_blocks()), static_cast<size_t>(g.k_blocks())});
           })
      .def("lists",
           [](const PyBlockMask& m) {
             const BlockMaskView v = m.mask.view();
             nb::dict d;
             d["kv_partial"] = list_arrays(v.kv_partial);
             d["kv_full"] = list_arrays(v.kv_full);
             d["q_partial"] = list_arrays(v.q_partial);
             d["q_full"] = list_arrays(v.q_full);
             return d;
           })
      .def("to_dense", &to_dense)
      .def("upload", [](PyBlockMask& m, int device) { m.view_for(Device::cuda(device)); }, "device"_a)
      .def_prop_ro("devices", [](const PyBlockMask& m) {
        std::vector<int> out;
        for (const auto& [device, copy] : m.on_device) out.push_back(device);
        return out;
      });
}

void bind_constructors(nb::module_& s) {
  const auto element_args = [](auto... leading) {
    return std::make_tuple(leading..., nb::kw_only(), "window_left"_a = -1, "window_right"_a = -1, "sinks"_a = 0,
                           "prefix"_a = 0, "head_windows"_a = nb::none(), "q_document"_a = nb::none(),
                           "k_document"_a = nb::none(), "grid"_a = nb::none(), "token_order"_a = nb::none());
  };
  std::apply(
      [&](auto... a) {
        s.def(
            "from_lists",
            [](const GeometryTuple& g, const I32Host& partial_offsets, const I32Host& partial_indices,
               const I32Host& full_offsets, const I32Host& full_indices, int64_t wl, int64_t wr, int64_t sinks,
               int64_t prefix, const std::optional<I32Host>& hw, const std::optional<I32Host>& qd,
               const std::optional<I32Host>& kd, const std::optional<GridMask>& grid,
               const std::optional<I32Host>& order) {
              BlockMask m = BlockMask::from_lists(geometry(g), to_vector(partial_offsets), to_vector(partial_indices),
                                                  to_vector(full_offsets), to_vector(full_indices));
              return with_element(std::move(m), wl, wr, sinks, prefix, hw, qd, kd, grid, order);
            },
            a...);
      },
      element_args("geometry"_a, "partial_offsets"_a, "partial_indices"_a, "full_offsets"_a, "full_indices"_a));
  std::apply(
      [&](auto... a) {
        s.def(
            "from_block_map",
            [](const GeometryTuple& g, const nb::ndarray<const uint8_t, nb::device::cpu, nb::c_contig>& map,
               int64_t wl, int64_t wr, int64_t sinks, int64_t prefix, const std::optional<I32Host>& hw,
               const std::optional<I32Host>& qd, const std::optional<I32Host>& kd,
               const std::optional<GridMask>& grid, const std::optional<I32Host>& order) {
              std::vector<BlockMask::Block> blocks(map.size());
              for (size_t i = 0; i < map.size(); ++i) blocks[i] = static_cast<BlockMask::Block>(map.data()[i]);
              BlockMask m = BlockMask::from_block_map(geometry(g), blocks);
              return with_element(std::move(m), wl, wr, sinks, prefix, hw, qd, kd, grid, order);
            },
            a...);
      },
      element_args("geometry"_a, "block_map"_a));
}

void bind_generators(nb::module_& s) {
  namespace sp = omniattn::sparse;
  auto wrap = [](BlockMask m) { return PyBlockMask(std::move(m)); };
  s.def("sliding_window", [=](const GeometryTuple& g, int64_t l, int64_t r) { return wrap(sp::sliding_window(geometry(g), l, r)); });
  s.def("sinks_window", [=](const GeometryTuple& g, int64_t n, int64_t l) { return wrap(sp::sinks_window(geometry(g), n, l)); });
  s.def("prefix_lm", [=](const GeometryTuple& g, int64_t prefix) { return wrap(sp::prefix_lm(geometry(g), prefix)); });
  s.def("documents", [=](const GeometryTuple& g, const std::vector<int64_t>& lengths, bool causal) {
    return wrap(sp::documents(geometry(g), lengths, causal));
  });
  s.def("dilated_blocks", [=](const GeometryTuple& g, int64_t window_blocks, int64_t dilation, bool causal) {
    return wrap(sp::dilated_blocks(geometry(g), window_blocks, dilation, causal));
  });
  s.def("power_of_two_blocks", [=](const GeometryTuple& g, int64_t sink_blocks) {
    return wrap(sp::power_of_two_blocks(geometry(g), sink_blocks));
  });
  s.def("head_windows", [=](const GeometryTuple& g, const std::vector<std::array<int64_t, 3>>& windows) {
    return wrap(sp::head_windows(geometry(g), windows));
  });
  s.def("neighborhood", [=](const GeometryTuple& g, const GridMask& grid, const std::optional<I32Host>& order) {
    return wrap(sp::neighborhood(geometry(g), grid, order_or_empty(order)));
  });
  s.def("axial", [=](const GeometryTuple& g, const GridMask& grid, const std::optional<I32Host>& order) {
    return wrap(sp::axial(geometry(g), grid, order_or_empty(order)));
  });
  // Token orders: position -> grid index, as numpy int32.
  s.def("tile_order", [](const GridMask& grid, const std::array<int64_t, 3>& tile) {
    std::vector<int32_t> o = sp::tile_order(grid, tile);
    const size_t n = o.size();
    return to_numpy(std::move(o), {n});
  });
  s.def("hilbert_order", [](const GridMask& grid) {
    std::vector<int32_t> o = sp::hilbert_order(grid);
    const size_t n = o.size();
    return to_numpy(std::move(o), {n});
  });
  s.def("inverse_order", [](const I32Host& order) {
    std::vector<int32_t> o = sp::inverse_order(to_vector(order));
    const size_t n = o.size();
    return to_numpy(std::move(o), {n});
  });
}

}  // namespace

void bind_graph(nb::module_& s);

void bind_sparse(nb::module_& m) {
  nb::module_ s = m.def_submodule("sparse", "BlockMask, mask generators, token orders, graph attention");
  bind_mask_class(s);
  bind_constructors(s);
  bind_generators(s);
  bind_graph(s);
}

}  // namespace omniattn::python
