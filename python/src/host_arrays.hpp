#pragma once
// Small host int32 arrays between numpy and std::vector (masks, token orders): copies, since the C++ API takes
// and returns owning vectors.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace omniattn::python {

/// A contiguous 1-D int32 host array (the Python layer casts with numpy first).
using I32Host = nanobind::ndarray<const int32_t, nanobind::ndim<1>, nanobind::device::cpu, nanobind::c_contig>;

inline std::vector<int32_t> to_vector(const I32Host& a) { return {a.data(), a.data() + a.shape(0)}; }

/// A numpy array that owns `values` (moved to the heap, freed with the array).
template <class T>
nanobind::ndarray<nanobind::numpy, T> to_numpy(std::vector<T> values, std::initializer_list<size_t> shape) {
  if (values.empty()) values.reserve(1);  // never a null data pointer
  auto* heap = new std::vector<T>(std::move(values));
  nanobind::capsule owner(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nanobind::ndarray<nanobind::numpy, T>(heap->data(), shape.size(), shape.begin(), owner);
}

}  // namespace omniattn::python
