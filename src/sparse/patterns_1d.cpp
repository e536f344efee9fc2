// Sequence patterns: windows, sinks, prefix-LM, documents, per-head windows, and the block-level dilated
// and power-of-two patterns. Each states its rule once as an ElementMask and once as exact key intervals
// per query (the builder turns the intervals into full / partial blocks).
#include <fmt/format.h>

#include <algorithm>

#include "core/validate.hpp"
#include "omniattn/sparse.hpp"
#include "sparse/builder.hpp"

namespace omniattn::sparse {
namespace {

using detail::sparse::build_block_mask;
using detail::sparse::Intervals;
using detail::sparse::window_keys;

// A mask whose whole rule is the 1-D part of `e` (windows, sinks, prefix).
BlockMask from_window_rule(const Geometry& g, const ElementMask& e) {
  return build_block_mask(g, e, [&](int64_t head, int64_t i, Intervals& out) {
    window_keys(e, head, i, g.q_tokens, g.k_tokens, 0, g.k_tokens, out);
  });
}

void require_window(int64_t left, int64_t right) {
  OMNI_REQUIRE(left >= -1, "left", ">= -1 (-1 = unbounded)", std::to_string(left));
  OMNI_REQUIRE(right >= -1, "right", ">= -1 (-1 = unbounded)", std::to_string(right));
}

void require_self_attention(const Geometry& g, const char* what) {
  OMNI_REQUIRE(g.q_tokens == g.k_tokens && g.block_q == g.block_k, "geometry",
          fmt::format("q_tokens = k_tokens and block_q = block_k ({})", what),
          fmt::format("{}/{} tokens, blocks {}/{}", g.q_tokens, g.k_tokens, g.block_q, g.block_k));
}

// A block-level pattern: `listed(qb, kb)` says whether query block qb sees KV block kb; causal keeps keys
// j <= i inside (the diagonal blocks become partial).
template <class Listed>
BlockMask block_pattern(const Geometry& g, bool causal, Listed&& listed) {
  ElementMask e;
  if (causal) e.window_right = 0;
  return build_block_mask(g, e, [&](int64_t, int64_t i, Intervals& out) {
    const int64_t qb = i / g.block_q, end = causal ? i + 1 : g.k_tokens;
    for (int64_t kb = 0; kb * g.block_k < end; ++kb)
      if (listed(qb, kb)) out.emplace_back(kb * g.block_k, std::min((kb + 1) * g.block_k, end));
  });
}

}  // namespace

BlockMask sliding_window(const Geometry& g, int64_t left, int64_t right) {
  require_window(left, right);
  ElementMask e;
  e.window_left = left;
  e.window_right = right;
  return from_window_rule(g, e);
}

BlockMask sinks_window(const Geometry& g, int64_t sinks, int64_t left) {
  OMNI_REQUIRE(sinks >= 0, "sinks", ">= 0", std::to_string(sinks));
  OMNI_REQUIRE(left >= 0, "left", ">= 0", std::to_string(left));
  ElementMask e;
  e.window_left = left;
  e.window_right = 0;
  e.sinks = sinks;
  return from_window_rule(g, e);
}

BlockMask prefix_lm(const Geometry& g, int64_t prefix) {
  OMNI_REQUIRE(prefix >= 0, "prefix", ">= 0", std::to_string(prefix));
  ElementMask e;
  e.window_right = 0;
  e.prefix = prefix;
  return from_window_rule(g, e);
}

BlockMask documents(const Geometry& g, const std::vector<int64_t>& lengths, bool causal) {
  std::vector<int32_t> doc;  // document id per token
  std::vector<int64_t> start;
  for (size_t d = 0; d < lengths.size(); ++d) {
    OMNI_REQUIRE(lengths[d] >= 0, "lengths", ">= 0 each", fmt::format("{} at {}", lengths[d], d));
    start.push_back(static_cast<int64_t>(doc.size()));
    doc.insert(doc.end(), static_cast<size_t>(lengths[d]), static_cast<int32_t>(d));
  }
  OMNI_REQUIRE(static_cast<int64_t>(doc.size()) == g.q_tokens && g.q_tokens == g.k_tokens, "lengths",
          fmt::format("a sum of {} (q_tokens = k_tokens)", g.q_tokens), std::to_string(doc.size()));
  ElementMask e;
  if (causal) e.window_right = 0;
  e.q_document = e.k_document = {doc.data(), static_cast<int64_t>(doc.size())};
  BlockMask m = build_block_mask(g, e, [&](int64_t head, int64_t i, Intervals& out) {
    const int32_t d = doc[static_cast<size_t>(i)];
    window_keys(e, head, i, g.q_tokens, g.k_tokens, start[static_cast<size_t>(d)],
                start[static_cast<size_t>(d)] + lengths[static_cast<size_t>(d)], out);
  });
  m.set_documents(doc, doc);
  return m;
}

BlockMask dilated_blocks(const Geometry& g, int64_t window_blocks, int64_t dilation, bool causal) {
  require_self_attention(g, "block-level pattern");
  OMNI_REQUIRE(window_blocks >= 1, "window_blocks", ">= 1", std::to_string(window_blocks));
  OMNI_REQUIRE(dilation >= 1, "dilation", ">= 1", std::to_string(dilation));
  return block_pattern(g, causal, [&](int64_t qb, int64_t kb) {
    const int64_t delta = qb > kb ? qb - kb : kb - qb;
    return delta % dilation == 0 && delta / dilation < window_blocks;
  });
}

BlockMask power_of_two_blocks(const Geometry& g, int64_t sink_blocks) {
  require_self_attention(g, "block-level pattern");
  OMNI_REQUIRE(sink_blocks >= 0, "sink_blocks", ">= 0", std::to_string(sink_blocks));
  return block_pattern(g, true, [&](int64_t qb, int64_t kb) {
    const int64_t delta = qb - kb;
    return kb < sink_blocks || delta == 0 || (delta > 0 && (delta & (delta - 1)) == 0);
  });
}

BlockMask head_windows(const Geometry& g, const std::vector<std::array<int64_t, 3>>& windows) {
  OMNI_REQUIRE(static_cast<int64_t>(windows.size()) == g.heads, "windows", fmt::format("{} (geometry.heads) windows", g.heads),
          std::to_string(windows.size()));
  std::vector<int32_t> flat;
  for (const auto& w : windows) {
    require_window(w[0], w[1]);
    OMNI_REQUIRE(w[2] >= 0, "windows", "sinks >= 0", std::to_string(w[2]));
    for (int64_t x : w) flat.push_back(static_cast<int32_t>(x));
  }
  ElementMask e;
  e.head_windows = {flat.data(), static_cast<int64_t>(flat.size())};
  BlockMask m = from_window_rule(g, e);
  m.set_head_windows(flat);
  return m;
}

}  // namespace omniattn::sparse
