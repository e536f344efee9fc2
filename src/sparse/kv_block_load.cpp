// kv_block_load: how unevenly a block mask loads its KV blocks, read from the transposed (q) lists of a CPU view.
// The CUDA backward gives each KV block's walk of its query blocks to one CTA; this tells it which walks are long.
#include <algorithm>
#include <vector>

#include "omniattn/mask.hpp"

namespace omniattn {

std::vector<int32_t> kv_block_load(const BlockMaskView& mask) {
  const int64_t kb = mask.k_blocks(), rows = mask.batch * mask.heads;
  std::vector<int32_t> load(static_cast<size_t>(kb), 0);
  const int32_t* partial = mask.q_partial.offsets.ptr<const int32_t>();
  const int32_t* full = mask.q_full.offsets.ptr<const int32_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < kb; ++k) {
      const int64_t i = r * kb + k;  // row (batch, head, KV block) of the q lists
      const int32_t listed = (partial[i + 1] - partial[i]) + (full[i + 1] - full[i]);
      load[static_cast<size_t>(k)] = std::max(load[static_cast<size_t>(k)], listed);
    }
  return load;
}

}  // namespace omniattn
