#pragma once
// Host side of TMA: tensor maps (CUtensorMap) describing a [batch, tokens, heads, dim] operand, encoded through
// the driver's cuTensorMapEncodeTiled (fetched with cudaGetDriverEntryPointByVersion, so nothing links libcuda).
#include <cuda.h>

#include <cstdint>

namespace omniattn::detail::cuda {

/// A 16-bit operand whose element (b, t, h, c) sits at data + b*batch + t*token + h*head + c (strides in
/// elements). The map's box is (64 columns, `box_rows` tokens, 1 head, 1 batch), 128-byte swizzled: one box
/// fills `box_rows` rows of 128 bytes in shared memory. Tokens past `tokens` read as zero and are not written.
struct Operand4d {
  const void* data = nullptr;
  int64_t batches = 1, tokens = 0, heads = 1, dim = 0;
  int64_t batch = 0, token = 0, head = 0;  // strides, elements
};

/// Throws omniattn::Error naming `what` when the driver refuses the map (alignment, strides, sizes).
CUtensorMap make_tensor_map_4d(const Operand4d& o, int box_rows, const char* what);

}  // namespace omniattn::detail::cuda
