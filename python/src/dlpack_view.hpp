#pragma once
// DLPack (nanobind ndarray) -> omniattn::TensorView, zero-copy. Whatever the producer (torch, numpy, cupy,
// jax...), the view addresses the producer's memory; the caller keeps the ndarray alive during the call.
#include <nanobind/ndarray.h>

#include <optional>

#include "omniattn/tensor.hpp"

namespace omniattn::python {

/// Any DLPack array (read-only allowed: inputs are never written).
using Array = nanobind::ndarray<nanobind::ro>;
/// A DLPack array the call writes into.
using OutArray = nanobind::ndarray<>;

/// Raises TypeError for an unsupported dtype and ValueError for an unsupported device or rank.
TensorView to_view(const Array& a, const char* name);
TensorView to_view(const OutArray& a, const char* name);
std::optional<TensorView> to_view(const std::optional<Array>& a, const char* name);
std::optional<TensorView> to_view(const std::optional<OutArray>& a, const char* name);

}  // namespace omniattn::python
