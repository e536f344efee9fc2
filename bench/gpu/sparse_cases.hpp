#pragma once
// The cases of omniattn_bench_sparse: block-sparse patterns x lengths x block sizes, the host BlockMask of each,
// and what the mask covers (listed blocks, their area, the visible pairs that count as FLOPs). The same case list,
// with every mask's block map, is written as JSON for the FlexAttention peer (bench/gpu/peers_sparse.py), so both
// programs run the same masks.
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omniattn/mask.hpp"

namespace omniattn::bench {

/// One benchmarked problem: bf16, B x N tokens, Hq = Hkv = heads, D = Dv = d, self-attention (Sq = Sk = n).
struct SparseCase {
  enum class Kind {
    dense,         // no block mask, no mask (the reference row)
    causal_dense,  // no block mask, options.causal (the library's native causal path)
    window,        // 1-D rule (left, right, sinks) as a BlockMask: causal, sliding window, sinks + window
    random,        // random per-head block map (causal; diagonal blocks partial, a share of the others too)
    grid,          // NATTEN neighborhood on a 2-D/3-D grid, tokens in tile order
  };
  Kind kind = Kind::dense;
  std::string pattern;  // "dense", "causal", "window1024", "sinks4_window1024", "random10", "natten2d_128x128_k13"
  int64_t batch = 1, heads = 16, n = 0, d = 128;
  int64_t block = 0;                          // block_q = block_k of the mask (0: no block mask)
  int64_t left = -1, right = -1, sinks = 0;   // window rule (-1: unbounded); random: the partial blocks' rule
  double target_density = 0;                  // random: listed-block area / full area asked for
  double partial_share = 0.25;                // random: off-diagonal listed blocks made partial
  uint64_t seed = 0;                          // random
  GridMask grid;                              // grid
  std::array<int64_t, 3> tile = {1, 1, 1};    // grid: tile_order's tile

  bool has_block_mask() const { return kind != Kind::dense && kind != Kind::causal_dense; }
  /// The results' "mask" field: none / causal for the dense rows, block for every BlockMask row.
  const char* mask_name() const;
  /// "window1024/N8192/b128": unique over a case list.
  std::string id() const;
};

struct CaseFlags {
  std::vector<int64_t> lengths = {8192, 16384, 32768};
  std::vector<std::string> patterns;  // name prefixes to keep ("window", "random10", ...); empty: all
  bool quick = false;                 // N = 16k only, 128-token blocks only
  std::array<int64_t, 2> grid2d = {128, 128};
  int64_t kernel2d = 13;
  std::array<int64_t, 3> grid3d = {16, 32, 32};
  int64_t kernel3d = 7;
};

/// Full mode: per N of lengths (B = max(1, 16384 / N), Hq = 16, D = 128): dense, causal (native and as a block
/// mask), window 1024, sinks 4 + window 1024, random 10% and 30% (128-token blocks); at N = 16k (or the middle
/// length) also window 1024 with 64-token blocks; the 2-D and 3-D neighborhoods with 128- and 64-token blocks.
/// Quick: one N (16k), 128-token blocks.
std::vector<SparseCase> make_cases(const CaseFlags& f);

/// The case's host BlockMask (batch 1 shared by every sequence; heads 1 shared, or Hq for random maps).
BlockMask build_mask(const SparseCase& c);

/// What a mask covers, summed over the call's B x Hq (query head) grid.
struct MaskStats {
  int64_t mask_heads = 1;
  int64_t listed_blocks = 0, full_blocks = 0;  // over the mask's own heads
  double listed_area = 0;                      // pairs in listed blocks (edge blocks clipped), B x Hq
  double pairs = 0;                            // visible (query, key) pairs, B x Hq: the FLOP count's area
  double density = 1, pair_density = 1;        // listed_area and pairs over B x Hq x N²
};
/// `mask` is null for the dense kinds.
MaskStats mask_stats(const SparseCase& c, const BlockMask* mask);

/// Visible keys of each query row of mask head 0 (every pair evaluated: small N only).
std::vector<int64_t> row_pairs(const BlockMask& mask);

/// The case as the peer reads it: shape, rule, stats, the block map (heads x Qb x Kb digits 0 skipped,
/// 1 partial, 2 full), the token order of grid cases, and with `with_rows` also row_pairs().
nlohmann::json case_json(const SparseCase& c, const BlockMask* mask, const MaskStats& s, bool with_rows);

}  // namespace omniattn::bench
