#pragma once
// Shared by the sparse tests: a dense boolean mask written plainly, and the check that a BlockMask is the
// exact block form of it (skipped = no visible pair, full = all pairs visible, partial = the element rule
// reproduces every pair).
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "omniattn/mask.hpp"
#include "omniattn/sparse.hpp"

namespace omniattn::testing {

/// visible[(head * sq + i) * sk + j] for the mask heads of one batch entry.
struct DenseMask {
  int64_t heads = 1, sq = 0, sk = 0;
  std::vector<char> visible;
  static DenseMask of(int64_t heads, int64_t sq, int64_t sk, const std::function<bool(int64_t, int64_t, int64_t)>& f) {
    DenseMask m{heads, sq, sk, std::vector<char>(static_cast<size_t>(heads * sq * sk))};
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < sq; ++i)
        for (int64_t j = 0; j < sk; ++j) m.visible[static_cast<size_t>((h * sq + i) * sk + j)] = f(h, i, j);
    return m;
  }
  bool at(int64_t h, int64_t i, int64_t j) const { return visible[static_cast<size_t>((h * sq + i) * sk + j)]; }
};

/// The BlockMask is exactly `dense` (for every batch entry of the mask).
inline ::testing::AssertionResult exact_block_form(const BlockMask& mask, const DenseMask& dense) {
  const BlockMask::Geometry& g = mask.geometry();
  if (g.heads != dense.heads || g.q_tokens != dense.sq || g.k_tokens != dense.sk)
    return ::testing::AssertionFailure() << "geometry differs from the dense mask";
  const std::vector<BlockMask::Block> map = mask.to_block_map();
  const BlockMaskView view = mask.view();
  const ElementMask& e = view.element;
  const int64_t qbs = g.q_blocks(), kbs = g.k_blocks();
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t h = 0; h < g.heads; ++h)
      for (int64_t qb = 0; qb < qbs; ++qb)
        for (int64_t kb = 0; kb < kbs; ++kb) {
          const BlockMask::Block kind = map[static_cast<size_t>(((b * g.heads + h) * qbs + qb) * kbs + kb)];
          int64_t pairs = 0, seen = 0;
          for (int64_t i = qb * g.block_q; i < std::min((qb + 1) * g.block_q, g.q_tokens); ++i)
            for (int64_t j = kb * g.block_k; j < std::min((kb + 1) * g.block_k, g.k_tokens); ++j) {
              ++pairs;
              const bool want = dense.at(h, i, j);
              seen += want;
              if (kind == BlockMask::Block::partial && e.visible(h, i, j, g.q_tokens, g.k_tokens) != want)
                return ::testing::AssertionFailure() << "element rule differs at head " << h << " (" << i << ", " << j
                                                     << "): dense says " << want;
            }
          const BlockMask::Block expected = seen == 0       ? BlockMask::Block::skipped
                                            : seen == pairs ? BlockMask::Block::full
                                                            : BlockMask::Block::partial;
          if (kind != expected)
            return ::testing::AssertionFailure()
                   << "block (" << qb << ", " << kb << ") of head " << h << " batch " << b << " is "
                   << static_cast<int>(kind) << ", expected " << static_cast<int>(expected) << " (" << seen << " of "
                   << pairs << " pairs visible)";
        }
  return ::testing::AssertionSuccess();
}

/// NATTEN's neighborhood along one axis, stated the classic way: within a dilation group, a window of k
/// consecutive positions starting at clamp(leader - k/2, 0, n - k) (causal: ending at the query, reaching
/// k - 1 back from the stride group's last query).
inline bool na_axis(int64_t L, int64_t k, int64_t dil, int64_t stride, bool causal, int64_t x, int64_t y) {
  if (x % dil != y % dil) return false;
  const int64_t n = 0 + (L - x % dil + dil - 1) / dil;  // positions of this residue
  const int64_t xq = x / dil, yk = y / dil;
  if (causal) {
    const int64_t last = std::min((xq / stride) * stride + stride - 1, n - 1);
    return yk <= xq && yk > last - k;
  }
  const int64_t leader = std::min((xq / stride) * stride + stride / 2, n - 1);
  const int64_t start = std::clamp<int64_t>(leader - k / 2, 0, n - k);
  return yk >= start && yk < start + k;
}

}  // namespace omniattn::testing
