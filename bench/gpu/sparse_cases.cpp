#include "sparse_cases.hpp"

#include <algorithm>
#include <stdexcept>

#include "omniattn/sparse.hpp"

namespace omniattn::bench {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Random causal block map [heads, Qb, Kb]: diagonal blocks partial (causal inside); each block below the diagonal
// listed with the probability that makes the listed area target_density of the full area, and partial (its pairs
// all visible, but decided by the element rule) with probability partial_share.
std::vector<BlockMask::Block> random_map(const SparseCase& c) {
  const int64_t nb = (c.n + c.block - 1) / c.block;
  const double below = double(nb) * double(nb - 1) / 2;
  const double p = below > 0 ? std::clamp((c.target_density * double(nb) * double(nb) - double(nb)) / below, 0.0, 1.0)
                             : 0.0;
  std::vector<BlockMask::Block> map(size_t(c.heads * nb * nb), BlockMask::Block::skipped);
  for (int64_t h = 0; h < c.heads; ++h)
    for (int64_t qb = 0; qb < nb; ++qb)
      for (int64_t kb = 0; kb <= qb; ++kb) {
        auto& m = map[size_t((h * nb + qb) * nb + kb)];
        if (kb == qb) {
          m = BlockMask::Block::partial;
          continue;
        }
        const uint64_t r = mix(c.seed * 0x9e3779b97f4a7c15ull + uint64_t((h * nb + qb) * nb + kb));
        if (double(r >> 11) * 0x1.0p-53 >= p) continue;
        m = double(r & 0xff) < c.partial_share * 256 ? BlockMask::Block::partial : BlockMask::Block::full;
      }
  return map;
}

bool window_only(const ElementMask& e) {
  return e.head_windows.empty() && e.prefix == 0 && e.q_document.empty() && e.grid.kind == GridMask::Kind::none;
}

// Visible keys of query i among keys [k0, k1) under the element rule, pair by pair.
int64_t row_visible_each(const ElementMask& e, int64_t head, int64_t i, int64_t k0, int64_t k1, int64_t n) {
  int64_t count = 0;
  for (int64_t j = k0; j < k1; ++j) count += e.visible(head, i, j, n, n);
  return count;
}

// Same for a window-only rule, from intervals: the window [i - left, i + right] plus the sinks below it.
int64_t row_visible_window(const ElementMask& e, int64_t i, int64_t k0, int64_t k1) {
  const int64_t hi = e.window_right < 0 ? k1 - 1 : std::min(k1 - 1, i + e.window_right);
  const int64_t lo = e.window_left < 0 ? k0 : std::max(k0, i - e.window_left);
  const int64_t in_window = std::max<int64_t>(0, hi - lo + 1);
  const int64_t sinks_below = std::max<int64_t>(0, std::min({e.sinks, hi + 1, lo}) - k0);
  return in_window + sinks_below;
}

// Visible pairs of mask head h, summed over its listed blocks.
double head_pairs(const BlockMask& mask, const std::vector<BlockMask::Block>& map, const ElementMask& e, int64_t h,
                  bool fast) {
  const auto& g = mask.geometry();
  const int64_t qbn = g.q_blocks(), kbn = g.k_blocks(), n = g.q_tokens;
  double pairs = 0;
  for (int64_t qb = 0; qb < qbn; ++qb)
    for (int64_t kb = 0; kb < kbn; ++kb) {
      const auto state = map[size_t((h * qbn + qb) * kbn + kb)];
      if (state == BlockMask::Block::skipped) continue;
      const int64_t i0 = qb * g.block_q, i1 = std::min(i0 + g.block_q, n);
      const int64_t k0 = kb * g.block_k, k1 = std::min(k0 + g.block_k, g.k_tokens);
      if (state == BlockMask::Block::full) {
        pairs += double(i1 - i0) * double(k1 - k0);
        continue;
      }
      for (int64_t i = i0; i < i1; ++i)
        pairs += double(fast ? row_visible_window(e, i, k0, k1) : row_visible_each(e, h, i, k0, k1, n));
    }
  return pairs;
}

const char* kind_name(SparseCase::Kind k) {
  switch (k) {
    case SparseCase::Kind::dense: return "dense";
    case SparseCase::Kind::causal_dense: return "causal_dense";
    case SparseCase::Kind::window: return "window";
    case SparseCase::Kind::random: return "random";
    case SparseCase::Kind::grid: return "grid";
  }
  return "?";
}

std::string grid_text(const GridMask& g) {
  std::string s;
  for (int a = 0; a < g.ndim; ++a) {
    if (a) s += 'x';
    s += std::to_string(g.shape[a]);
  }
  return s;
}

}  // namespace

const char* SparseCase::mask_name() const {
  return kind == Kind::dense ? "none" : kind == Kind::causal_dense ? "causal" : "block";
}

std::string SparseCase::id() const {
  return pattern + "/" + mask_name() + "/N" + std::to_string(n) + (block ? "/b" + std::to_string(block) : "");
}

std::vector<SparseCase> make_cases(const CaseFlags& f) {
  const std::vector<int64_t> lengths = f.quick ? std::vector<int64_t>{16384} : f.lengths;
  const bool has_16k = std::find(lengths.begin(), lengths.end(), 16384) != lengths.end();
  const int64_t middle = has_16k ? 16384 : lengths[lengths.size() / 2];
  std::vector<SparseCase> all;
  for (int64_t n : lengths) {
    SparseCase base;
    base.n = n;
    base.batch = std::max<int64_t>(1, 16384 / n);
    auto add = [&](SparseCase::Kind kind, const std::string& pattern, int64_t block, auto&& set) {
      SparseCase c = base;
      c.kind = kind, c.pattern = pattern, c.block = block;
      set(c);
      all.push_back(c);
    };
    auto window = [](int64_t left, int64_t right, int64_t sinks) {
      return [=](SparseCase& c) { c.left = left, c.right = right, c.sinks = sinks; };
    };
    add(SparseCase::Kind::dense, "dense", 0, [](SparseCase&) {});
    add(SparseCase::Kind::causal_dense, "causal", 0, [](SparseCase&) {});
    add(SparseCase::Kind::window, "causal", 128, window(-1, 0, 0));
    add(SparseCase::Kind::window, "window1024", 128, window(1023, 0, 0));
    if (!f.quick && n == middle) add(SparseCase::Kind::window, "window1024", 64, window(1023, 0, 0));
    add(SparseCase::Kind::window, "sinks4_window1024", 128, window(1023, 0, 4));
    for (int percent : {10, 30})
      add(SparseCase::Kind::random, "random" + std::to_string(percent), 128, [&](SparseCase& c) {
        c.left = -1, c.right = 0, c.target_density = percent / 100.0, c.seed = 1000 + uint64_t(percent);
      });
  }
  // Neighborhoods: one grid each, B x tokens = 16k (B = 1 at the default grids), tiles of one mask block.
  auto add_grid = [&](int ndim, const int64_t* shape, int64_t kernel, std::array<int64_t, 3> tile128,
                      std::array<int64_t, 3> tile64) {
    SparseCase c;
    c.kind = SparseCase::Kind::grid;
    c.grid.kind = GridMask::Kind::neighborhood;
    c.grid.ndim = ndim;
    for (int a = 0; a < ndim; ++a) c.grid.shape[a] = shape[a], c.grid.kernel[a] = kernel;
    c.n = c.grid.tokens();
    c.batch = std::max<int64_t>(1, 16384 / c.n);
    c.pattern = "natten" + std::to_string(ndim) + "d_" + grid_text(c.grid) + "_k" + std::to_string(kernel);
    for (int64_t block : {128, 64}) {
      if (block == 64 && f.quick) continue;
      c.block = block;
      c.tile = block == 128 ? tile128 : tile64;
      all.push_back(c);
    }
  };
  add_grid(2, f.grid2d.data(), f.kernel2d, {8, 16, 1}, {8, 8, 1});
  add_grid(3, f.grid3d.data(), f.kernel3d, {4, 4, 8}, {4, 4, 4});
  if (f.patterns.empty()) return all;
  std::vector<SparseCase> kept;
  for (const auto& c : all)
    if (std::any_of(f.patterns.begin(), f.patterns.end(), [&](const std::string& p) { return c.pattern.rfind(p, 0) == 0; }))
      kept.push_back(c);
  return kept;
}

BlockMask build_mask(const SparseCase& c) {
  sparse::Geometry g;
  g.batch = 1, g.heads = c.kind == SparseCase::Kind::random ? c.heads : 1;
  g.q_tokens = g.k_tokens = c.n, g.block_q = g.block_k = c.block;
  switch (c.kind) {
    case SparseCase::Kind::window:
      return c.sinks > 0 ? sparse::sinks_window(g, c.sinks, c.left) : sparse::sliding_window(g, c.left, c.right);
    case SparseCase::Kind::random: {
      ElementMask e;
      e.window_left = c.left, e.window_right = c.right;
      return BlockMask::from_block_map(g, random_map(c), e);
    }
    case SparseCase::Kind::grid:
      return sparse::neighborhood(g, c.grid, sparse::tile_order(c.grid, c.tile));
    default:
      throw std::logic_error("build_mask: case " + c.id() + " has no block mask");
  }
}

MaskStats mask_stats(const SparseCase& c, const BlockMask* mask) {
  MaskStats s;
  const double full = double(c.batch) * double(c.heads) * double(c.n) * double(c.n);
  if (!mask) {
    s.pairs = c.kind == SparseCase::Kind::causal_dense ? full / double(c.n) * double(c.n + 1) / 2 : full;
    s.listed_area = s.pairs;
    s.density = s.pair_density = s.pairs / full;
    return s;
  }
  const auto& g = mask->geometry();
  const auto map = mask->to_block_map();
  const BlockMaskView view = mask->view();
  const bool fast = window_only(view.element);
  s.mask_heads = g.heads;
  double area = 0, pairs = 0;
  for (int64_t h = 0; h < g.heads; ++h) pairs += head_pairs(*mask, map, view.element, h, fast);
  for (size_t r = 0; r < map.size(); ++r) {
    if (map[r] == BlockMask::Block::skipped) continue;
    const int64_t kb = int64_t(r) % g.k_blocks(), qb = int64_t(r) / g.k_blocks() % g.q_blocks();
    area += double(std::min(g.block_q, g.q_tokens - qb * g.block_q)) * double(std::min(g.block_k, g.k_tokens - kb * g.block_k));
    s.listed_blocks += 1;
    s.full_blocks += map[r] == BlockMask::Block::full;
  }
  const double per_mask_head = double(c.batch) * double(c.heads / g.heads);  // (b, query head) pairs per mask head
  s.listed_area = area * per_mask_head;
  s.pairs = pairs * per_mask_head;
  s.density = s.listed_area / full;
  s.pair_density = s.pairs / full;
  return s;
}

std::vector<int64_t> row_pairs(const BlockMask& mask) {
  const auto& g = mask.geometry();
  const auto map = mask.to_block_map();
  const BlockMaskView view = mask.view();
  std::vector<int64_t> rows(size_t(g.q_tokens), 0);
  for (int64_t i = 0; i < g.q_tokens; ++i)
    for (int64_t kb = 0; kb < g.k_blocks(); ++kb) {
      const auto state = map[size_t(i / g.block_q * g.k_blocks() + kb)];
      const int64_t k0 = kb * g.block_k, k1 = std::min(k0 + g.block_k, g.k_tokens);
      if (state == BlockMask::Block::full) rows[size_t(i)] += k1 - k0;
      if (state == BlockMask::Block::partial) rows[size_t(i)] += row_visible_each(view.element, 0, i, k0, k1, g.q_tokens);
    }
  return rows;
}

nlohmann::json case_json(const SparseCase& c, const BlockMask* mask, const MaskStats& s, bool with_rows) {
  nlohmann::json j = {{"id", c.id()},       {"pattern", c.pattern},   {"mask", c.mask_name()},
                      {"kind", kind_name(c.kind)}, {"B", c.batch},   {"Hq", c.heads},
                      {"Hkv", c.heads},     {"N", c.n},               {"D", c.d},
                      {"block", c.block},   {"mask_heads", s.mask_heads}, {"listed_blocks", s.listed_blocks},
                      {"full_blocks", s.full_blocks}, {"listed_area", s.listed_area}, {"pairs", s.pairs},
                      {"density", s.density}, {"pair_density", s.pair_density}};
  if (c.kind == SparseCase::Kind::window || c.kind == SparseCase::Kind::random)
    j["rule"] = {{"kind", "window"}, {"left", c.left}, {"right", c.right}, {"sinks", c.sinks}};
  if (c.kind == SparseCase::Kind::random)
    j["random"] = {{"target_density", c.target_density}, {"partial_share", c.partial_share}, {"seed", c.seed}};
  if (c.kind == SparseCase::Kind::grid) {
    std::vector<int64_t> shape(c.grid.shape, c.grid.shape + c.grid.ndim), kernel(c.grid.kernel, c.grid.kernel + c.grid.ndim);
    j["rule"] = {{"kind", "grid"}, {"shape", shape}, {"kernel", kernel}, {"tile", c.tile}};
    j["order"] = mask->token_order();
  }
  if (!mask) return j;
  std::string digits;
  for (auto b : mask->to_block_map()) digits += char('0' + int(b));
  j["map"] = digits;
  if (with_rows) {
    const auto rows = row_pairs(*mask);
    double head0 = 0;
    for (int64_t r : rows) head0 += double(r);
    const double fast = head_pairs(*mask, mask->to_block_map(), mask->view().element, 0, window_only(mask->view().element));
    if (head0 != fast)
      throw std::logic_error("case " + c.id() + ": pair count " + std::to_string(fast) + " != per-pair " +
                             std::to_string(head0));
    j["row_pairs"] = rows;
  }
  return j;
}

}  // namespace omniattn::bench
