#pragma once
// Attention semantics in one place: which keys a query sees and how a raw Q·K becomes a logit.
// The reference, the CPU kernels and the CUDA kernels all call these, so a variant is defined once.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define OMNI_HD __host__ __device__ __forceinline__
#else
#define OMNI_HD inline
#endif

namespace omniattn::detail {

/// Visibility inside one sequence of `sq` queries and `sk` keys (bottom-right aligned diagonal).
/// Visible keys of row i are [0, min(sinks, end(i))) ∪ [begin(i), end(i)).
struct SequenceMask {
  int64_t sq = 0, sk = 0;
  int64_t window_left = -1;   // -1: unbounded
  int64_t window_right = -1;  // -1: unbounded; causal is 0
  int64_t sinks = 0;

  OMNI_HD int64_t diag(int64_t i) const { return i + sk - sq; }
  /// One past the last visible key of row i (>= 0). Non-decreasing in i.
  OMNI_HD int64_t key_end(int64_t i) const {
    int64_t e = window_right >= 0 ? diag(i) + window_right + 1 : sk;
    return e < 0 ? 0 : (e > sk ? sk : e);
  }
  /// First key of row i's window (sinks aside). Non-decreasing in i.
  OMNI_HD int64_t key_begin(int64_t i) const {
    int64_t b = window_left >= 0 ? diag(i) - window_left : 0;
    return b < 0 ? 0 : b;
  }
  OMNI_HD bool visible(int64_t i, int64_t j) const {
    if (j < 0 || j >= key_end(i)) return false;
    return j >= key_begin(i) || j < sinks;
  }

  enum class Tile : uint8_t { empty, full, partial };
  /// Classifies the tile rows [i0, i1) x keys [j0, j1) (both non-empty). `empty` and `full` are exact
  /// claims (no element of the tile is / every element is visible); `partial` needs per-element masking.
  OMNI_HD Tile classify(int64_t i0, int64_t i1, int64_t j0, int64_t j1) const {
    const int64_t end_min = key_end(i0), end_max = key_end(i1 - 1);
    const int64_t begin_min = key_begin(i0), begin_max = key_begin(i1 - 1);
    if (j0 >= end_max) return Tile::empty;
    if (j1 <= begin_min && j0 >= sinks) return Tile::empty;
    const bool in_end = j1 <= end_min;
    const bool in_begin = j0 >= begin_max || j1 <= (sinks < end_min ? sinks : end_min);
    return (in_end && in_begin) ? Tile::full : Tile::partial;
  }
};

/// How a raw dot product q·k becomes a logit: scale, soft-cap, ALiBi. Same formula for every backend.
template <class T>
struct ScoreMod {
  T scale = 1;
  T softcap = 0;      // 0: off
  T alibi_slope = 0;  // 0: off
  OMNI_HD T logit(T dot, int64_t diag_i, int64_t j) const {
    T s = dot * scale;
    if (softcap > T(0)) s = softcap * std::tanh(s / softcap);
    if (alibi_slope != T(0)) {
      const int64_t dist = diag_i > j ? diag_i - j : j - diag_i;
      s -= alibi_slope * static_cast<T>(dist);
    }
    return s;
  }
  /// d logit / d (dot), given the logit before ALiBi was added (needed by backward with softcap).
  OMNI_HD T dlogit_ddot(T capped) const {
    if (softcap > T(0)) {
      const T t = capped / softcap;
      return scale * (T(1) - t * t);
    }
    return scale;
  }
};

}  // namespace omniattn::detail
