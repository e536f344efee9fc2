#pragma once
// Host-built TMA descriptors of the backward's per-step operands, handed to a main kernel that loads with TMA.
#include <cuda.h>

#include <vector>

namespace omniattn::detail::cuda {

/// TMA descriptors of a main kernel that loads Q and dO with TMA (sm_90a). Uniform batches: one map per operand.
/// Varlen: a group of maps per sequence, which enqueue_bwd uploads in one scratch blob with the sequence geometry
/// (a second upload would reuse the buffer that holds the first).
struct BwdTmaMaps {
  CUtensorMap q{}, dout{};
  std::vector<CUtensorMap> per_sequence;             // host, filled by make_maps when varlen
  const CUtensorMap* device_per_sequence = nullptr;  // their device copy, set by enqueue_bwd
};

}  // namespace omniattn::detail::cuda
