#include "sparse/builder.hpp"

#include <algorithm>

namespace omniattn::detail::sparse {

BlockMask build_block_mask(const BlockMask::Geometry& g, const ElementMask& element, const RowKeys& row_keys) {
  const int64_t qb_count = g.q_blocks(), kb_count = g.k_blocks();
  std::vector<int32_t> offsets[2] = {{0}, {0}}, indices[2];
  std::vector<int64_t> covered(static_cast<size_t>(kb_count), 0);  // visible pairs per KV block of this row
  std::vector<int32_t> touched;
  Intervals keys;
  std::vector<int32_t> head_offsets[2], head_indices[2];  // one batch's rows, repeated over g.batch
  for (int64_t head = 0; head < g.heads; ++head)
    for (int64_t qb = 0; qb < qb_count; ++qb) {
      const int64_t i_end = std::min((qb + 1) * g.block_q, g.q_tokens);
      for (int64_t i = qb * g.block_q; i < i_end; ++i) {
        keys.clear();
        row_keys(head, i, keys);
        for (auto [a, e] : keys) {
          a = std::max<int64_t>(a, 0);
          e = std::min(e, g.k_tokens);
          for (int64_t kb = a / g.block_k; a < e; ++kb) {
            const int64_t stop = std::min(e, (kb + 1) * g.block_k);
            if (covered[static_cast<size_t>(kb)] == 0) touched.push_back(static_cast<int32_t>(kb));
            covered[static_cast<size_t>(kb)] += stop - a;
            a = stop;
          }
        }
      }
      std::sort(touched.begin(), touched.end());
      const int64_t rows = i_end - qb * g.block_q;
      for (int32_t kb : touched) {
        const int64_t cols = std::min<int64_t>((kb + 1) * g.block_k, g.k_tokens) - int64_t{kb} * g.block_k;
        indices[covered[static_cast<size_t>(kb)] == rows * cols].push_back(kb);
        covered[static_cast<size_t>(kb)] = 0;
      }
      touched.clear();
      for (int k = 0; k < 2; ++k) offsets[k].push_back(static_cast<int32_t>(indices[k].size()));
    }
  // Further batches repeat the first one's rows.
  for (int k = 0; k < 2; ++k) {
    const int64_t per_batch = static_cast<int64_t>(indices[k].size()), rows = g.heads * qb_count;
    for (int64_t b = 1; b < g.batch; ++b) {
      for (int64_t r = 0; r < rows; ++r)
        offsets[k].push_back(static_cast<int32_t>(b * per_batch + offsets[k][static_cast<size_t>(r + 1)]));
      for (int64_t e = 0; e < per_batch; ++e) indices[k].push_back(indices[k][static_cast<size_t>(e)]);
    }
  }
  return BlockMask::from_lists(g, std::move(offsets[0]), std::move(indices[0]), std::move(offsets[1]),
                               std::move(indices[1]), element);
}

void window_keys(const ElementMask& e, int64_t head, int64_t i, int64_t sq, int64_t sk, int64_t lo, int64_t hi,
                 Intervals& out) {
  const ElementMask::RowRanges keys = e.row_ranges(head, i, sq, sk);
  const int64_t head_end = keys.front, w_begin = keys.begin, w_end = keys.end;  // [0, head_end) and the window
  auto add = [&](int64_t a, int64_t b) {
    a = std::max(a, lo);
    b = std::min(b, hi);
    if (a < b) out.emplace_back(a, b);
  };
  if (w_begin < w_end && w_begin <= head_end) {
    add(0, std::max(head_end, w_end));
  } else {
    add(0, head_end);
    add(w_begin, w_end);
  }
}

}  // namespace omniattn::detail::sparse
