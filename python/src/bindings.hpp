#pragma once
// Pieces of omniattn._C shared by its translation units: option parsing and the submodule binders.
#include <nanobind/nanobind.h>

#include <cstdint>
#include <optional>
#include <string>

#include "dlpack_view.hpp"
#include "omniattn/attention.hpp"

namespace omniattn::python {

Backend parse_backend(const std::string& name);

/// Options shared by forward, backward and decode, in the order of their keyword arguments.
AttentionOptions make_options(bool causal, int64_t window_left, int64_t window_right, int64_t sinks, double softcap,
                              std::optional<double> scale, const std::optional<Array>& alibi_slopes,
                              const std::optional<Array>& sink_logits, const std::optional<Array>& cu_seqlens_q,
                              const std::optional<Array>& cu_seqlens_k, const std::optional<Array>& seqused_k,
                              const std::string& backend, bool deterministic, uintptr_t stream);

/// omniattn._C.sparse: BlockMask, its generators, token orders, graph attention.
void bind_sparse(nanobind::module_& m);
/// omniattn._C.decode / kv_cache_append.
void bind_decode(nanobind::module_& m);

}  // namespace omniattn::python
