// BlockMask: host construction from CSR rows or a dense block map, the transposed lists, views.
#include <fmt/format.h>

#include <algorithm>

#include "core/validate.hpp"
#include "omniattn/error.hpp"
#include "omniattn/mask.hpp"
#include "sparse/mask_checks.hpp"

namespace omniattn {
namespace {

void check_geometry(const BlockMask::Geometry& g) {
  OMNI_REQUIRE(g.block_q == 64 || g.block_q == 128, "geometry.block_q", "64 or 128", std::to_string(g.block_q));
  OMNI_REQUIRE(g.block_k == 64 || g.block_k == 128, "geometry.block_k", "64 or 128", std::to_string(g.block_k));
  OMNI_REQUIRE(g.batch >= 1 && g.heads >= 1, "geometry", "batch >= 1 and heads >= 1",
                  fmt::format("batch {}, heads {}", g.batch, g.heads));
  OMNI_REQUIRE(g.q_tokens >= 0 && g.k_tokens >= 0 && g.q_tokens <= INT32_MAX && g.k_tokens <= INT32_MAX, "geometry",
                  "token counts in [0, 2^31)", fmt::format("q_tokens {}, k_tokens {}", g.q_tokens, g.k_tokens));
}

// Counts from offsets after checking the offsets' own shape (indices are checked by validate()).
std::vector<int32_t> counts_of(const std::vector<int32_t>& offsets, size_t indices, int64_t rows, const char* name) {
  OMNI_REQUIRE(static_cast<int64_t>(offsets.size()) == rows + 1, name, fmt::format("{} entries (rows + 1)", rows + 1),
                  std::to_string(offsets.size()));
  OMNI_REQUIRE(offsets[0] == 0 && offsets.back() == static_cast<int64_t>(indices), name,
                  fmt::format("first entry 0 and last {} (the index count)", indices),
                  fmt::format("{} and {}", offsets[0], offsets.back()));
  std::vector<int32_t> counts(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    OMNI_REQUIRE(offsets[r + 1] >= offsets[r], name, "non-decreasing entries", fmt::format("row {}", r));
    counts[static_cast<size_t>(r)] = offsets[r + 1] - offsets[r];
  }
  return counts;
}

TensorView i32_view(const std::vector<int32_t>& v, std::initializer_list<int64_t> shape) {
  // Never a null pointer, so that empty lists still name a CPU tensor.
  static const int32_t kEmpty = 0;
  const void* data = v.empty() ? &kEmpty : v.data();
  return TensorView::contiguous(const_cast<void*>(data), DType::i32, shape);
}

}  // namespace

BlockMask BlockMask::from_lists(const Geometry& g, std::vector<int32_t> partial_offsets,
                                std::vector<int32_t> partial_indices, std::vector<int32_t> full_offsets,
                                std::vector<int32_t> full_indices, const ElementMask& element) {
  check_geometry(g);
  BlockMask m;
  m.geometry_ = g;
  m.element_ = element;
  m.build_grid_table();
  const int64_t bh = g.batch * g.heads, qb = g.q_blocks(), kb = g.k_blocks();
  m.kv_[0].num_blocks = counts_of(partial_offsets, partial_indices.size(), bh * qb, "partial_offsets");
  m.kv_[1].num_blocks = counts_of(full_offsets, full_indices.size(), bh * qb, "full_offsets");
  m.kv_[0].offsets = std::move(partial_offsets);
  m.kv_[0].indices = std::move(partial_indices);
  m.kv_[1].offsets = std::move(full_offsets);
  m.kv_[1].indices = std::move(full_indices);
  for (int kind = 0; kind < 2; ++kind) {
    const Lists& kv = m.kv_[kind];
    for (int32_t c : kv.indices)
      OMNI_REQUIRE(c >= 0 && c < kb, kind ? "full_indices" : "partial_indices",
                      fmt::format("block indices in [0, {})", kb), std::to_string(c));
    // Transpose by counting sort: rows visited in increasing order keep each column's rows sorted.
    Lists& q = m.q_[kind];
    q.num_blocks.assign(static_cast<size_t>(bh * kb), 0);
    for (int64_t s = 0; s < bh; ++s)
      for (int64_t r = 0; r < qb; ++r)
        for (int32_t e = kv.offsets[s * qb + r]; e < kv.offsets[s * qb + r + 1]; ++e)
          ++q.num_blocks[static_cast<size_t>(s * kb + kv.indices[e])];
    q.offsets.assign(static_cast<size_t>(bh * kb + 1), 0);
    for (int64_t c = 0; c < bh * kb; ++c) q.offsets[c + 1] = q.offsets[c] + q.num_blocks[c];
    q.indices.resize(kv.indices.size());
    std::vector<int32_t> cursor(q.offsets.begin(), q.offsets.end() - 1);
    for (int64_t s = 0; s < bh; ++s)
      for (int64_t r = 0; r < qb; ++r)
        for (int32_t e = kv.offsets[s * qb + r]; e < kv.offsets[s * qb + r + 1]; ++e)
          q.indices[cursor[s * kb + kv.indices[e]]++] = static_cast<int32_t>(r);
  }
  detail::validate_block_mask(m.view(), "block_mask");
  return m;
}

BlockMask BlockMask::from_block_map(const Geometry& g, const std::vector<Block>& map, const ElementMask& element) {
  check_geometry(g);
  const int64_t rows = g.batch * g.heads * g.q_blocks(), kb = g.k_blocks();
  OMNI_REQUIRE(static_cast<int64_t>(map.size()) == rows * kb, "map",
                  fmt::format("{} entries [batch, heads, q_blocks, k_blocks]", rows * kb), std::to_string(map.size()));
  std::vector<int32_t> offsets[2], indices[2];
  for (auto& o : offsets) o.push_back(0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < kb; ++c) {
      const Block b = map[static_cast<size_t>(r * kb + c)];
      OMNI_REQUIRE(b == Block::skipped || b == Block::partial || b == Block::full, "map", "values 0, 1 or 2",
                      std::to_string(static_cast<int>(b)));
      if (b != Block::skipped) indices[b == Block::full].push_back(static_cast<int32_t>(c));
    }
    for (int k = 0; k < 2; ++k) offsets[k].push_back(static_cast<int32_t>(indices[k].size()));
  }
  return from_lists(g, std::move(offsets[0]), std::move(indices[0]), std::move(offsets[1]), std::move(indices[1]),
                    element);
}

std::vector<BlockMask::Block> BlockMask::to_block_map() const {
  const int64_t rows = geometry_.batch * geometry_.heads * geometry_.q_blocks(), kb = geometry_.k_blocks();
  std::vector<Block> map(static_cast<size_t>(rows * kb), Block::skipped);
  for (int k = 0; k < 2; ++k)
    for (int64_t r = 0; r < rows; ++r)
      for (int32_t e = kv_[k].offsets[r]; e < kv_[k].offsets[r + 1]; ++e)
        map[static_cast<size_t>(r * kb + kv_[k].indices[e])] = k ? Block::full : Block::partial;
  return map;
}

double BlockMask::density() const {
  const double all = static_cast<double>(geometry_.batch * geometry_.heads) * geometry_.q_blocks() * geometry_.k_blocks();
  return all > 0 ? static_cast<double>(listed_blocks()) / all : 0.0;
}

void BlockMask::set_token_order(std::vector<int32_t> order) {
  token_order_ = std::move(order);
  build_grid_table();
}

void BlockMask::build_grid_table() {
  table_grid_ = element_.grid;
  grid_table_.clear();
  if (table_grid_.kind != GridMask::Kind::none)
    grid_table_ = make_grid_table(table_grid_, {token_order_.empty() ? nullptr : token_order_.data(),
                                                static_cast<int64_t>(token_order_.size())});
}

BlockMaskView BlockMask::view() const {
  const Geometry& g = geometry_;
  BlockMaskView v;
  v.batch = g.batch;
  v.heads = g.heads;
  v.q_tokens = g.q_tokens;
  v.k_tokens = g.k_tokens;
  v.block_q = g.block_q;
  v.block_k = g.block_k;
  auto list = [&](const Lists& l, int64_t rows) {
    const int64_t n = g.batch * g.heads * rows;
    return BlockList{i32_view(l.num_blocks, {g.batch, g.heads, rows}), i32_view(l.offsets, {n + 1}),
                     i32_view(l.indices, {static_cast<int64_t>(l.indices.size())})};
  };
  v.kv_partial = list(kv_[0], g.q_blocks());
  v.kv_full = list(kv_[1], g.q_blocks());
  v.q_partial = list(q_[0], g.k_blocks());
  v.q_full = list(q_[1], g.k_blocks());
  v.element = element_;
  auto array = [](const std::vector<int32_t>& a) {
    return a.empty() ? I32Array{} : I32Array{a.data(), static_cast<int64_t>(a.size())};
  };
  v.element.head_windows = array(head_windows_);
  v.element.q_document = array(q_document_);
  v.element.k_document = array(k_document_);
  v.element.token_order = array(token_order_);
  v.element.grid_table = table_grid_ == element_.grid ? array(grid_table_) : I32Array{};
  return v;
}

}  // namespace omniattn
