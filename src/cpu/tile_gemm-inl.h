// The one microkernel of the CPU backend: every matrix product of forward and backward is
//   C (rows, vecs·N) (+)= A (rows, depth) · B (depth, vecs·N)        f32
// with A read as broadcast scalars through any two strides (so a transposed A costs nothing) and B read as
// rows of contiguous vectors. A kRows × kVecs block of C stays in registers over the whole depth:
// per depth step, kVecs vector loads of B and kRows broadcasts of A feed kRows·kVecs FMAs.
// (Highway per-target header: included once per target by foreach_target.h.)
#if defined(OMNIATTN_CPU_TILE_GEMM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef OMNIATTN_CPU_TILE_GEMM_INL_H_
#undef OMNIATTN_CPU_TILE_GEMM_INL_H_
#else
#define OMNIATTN_CPU_TILE_GEMM_INL_H_
#endif

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace omniattn::detail::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// A(r, k) = data[r * row + k * col]: broadcast operand.
struct ScalarMatrix {
  const float* data;
  int64_t row, col;
};
/// B(k) = data + k * row: `vecs` contiguous vectors per k.
struct VectorRows {
  const float* data;
  int64_t row;
};
/// C(r) = data + r * row.
struct OutRows {
  float* data;
  int64_t row;
};

// Longest run of depth steps summed in registers before the partial sums are added into C: summing a long
// dot product (S over a head dim of 512) in chunks keeps its rounding error well below a plain running sum.
constexpr int64_t kDepthChunk = 128;

// One register tile: R rows × V vectors of C, over the whole depth.
template <size_t R, size_t V, bool kAccumulate>
HWY_NOINLINE void MicroTile(const float* HWY_RESTRICT a, int64_t a_row, int64_t a_col,
                            const float* HWY_RESTRICT b, int64_t b_row, float* HWY_RESTRICT c, int64_t c_row,
                            int64_t depth) {
  const hn::ScalableTag<float> d;
  constexpr size_t N = hn::MaxLanes(d);
  using Vf = hn::Vec<decltype(d)>;
  const float* a_rows[R];
  for (size_t r = 0; r < R; ++r) a_rows[r] = a + static_cast<int64_t>(r) * a_row;
  for (int64_t k0 = 0; k0 < depth || k0 == 0; k0 += kDepthChunk) {
    const int64_t k1 = depth - k0 < kDepthChunk ? depth : k0 + kDepthChunk;
    // The first chunk continues from C when accumulating; later chunks are summed apart and added.
    const bool from_c = kAccumulate && k0 == 0;
    Vf acc[R][V];
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v) acc[r][v] = from_c ? hn::LoadU(d, c + r * c_row + v * N) : hn::Zero(d);
    for (int64_t k = k0; k < k1; ++k) {
      const float* bk = b + k * b_row;
      Vf bv[V];
      for (size_t v = 0; v < V; ++v) bv[v] = hn::LoadU(d, bk + v * N);
      const int64_t ak = k * a_col;
      for (size_t r = 0; r < R; ++r) {
        const Vf av = hn::Set(d, a_rows[r][ak]);
        for (size_t v = 0; v < V; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
      }
    }
    const bool add = k0 > 0;  // into what C holds, else overwrite
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v) {
        float* cv = c + r * c_row + v * N;
        hn::StoreU(add ? hn::Add(hn::LoadU(d, cv), acc[r][v]) : acc[r][v], d, cv);
      }
  }
}

using MicroTileFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int64_t);

// Every R in 1..kRows × V in 1..kVecs, indexed [(R - 1) * kVecs + (V - 1)], for the ragged edges.
template <class Shape, bool kAccumulate, size_t... I>
constexpr std::array<MicroTileFn, sizeof...(I)> MakeEdgeTable(std::index_sequence<I...>) {
  return {&MicroTile<I / Shape::kVecs + 1, I % Shape::kVecs + 1, kAccumulate>...};
}

/// C (rows, vecs vectors) (+)= A (rows, depth) · B (depth, vecs vectors), in Shape register tiles.
template <class Shape, bool kAccumulate>
void TileGemm(int64_t rows, int64_t vecs, int64_t depth, ScalarMatrix a, VectorRows b, OutRows c) {
  constexpr int64_t kR = Shape::kRows, kV = Shape::kVecs;
  constexpr int64_t N = static_cast<int64_t>(hn::MaxLanes(hn::ScalableTag<float>()));
  static constexpr auto kEdge =
      MakeEdgeTable<Shape, kAccumulate>(std::make_index_sequence<Shape::kRows * Shape::kVecs>());
  if (rows <= 0 || vecs <= 0) return;
  for (int64_t v0 = 0; v0 < vecs; v0 += kV) {
    const int64_t nv = vecs - v0 < kV ? vecs - v0 : kV;
    const float* b_cols = b.data + v0 * N;
    for (int64_t r0 = 0; r0 < rows; r0 += kR) {
      const int64_t nr = rows - r0 < kR ? rows - r0 : kR;
      const float* a_rows = a.data + r0 * a.row;
      float* c_tile = c.data + r0 * c.row + v0 * N;
      if (nr == kR && nv == kV) {
        MicroTile<Shape::kRows, Shape::kVecs, kAccumulate>(a_rows, a.row, a.col, b_cols, b.row, c_tile, c.row, depth);
      } else {
        kEdge[static_cast<size_t>((nr - 1) * kV + (nv - 1))](a_rows, a.row, a.col, b_cols, b.row, c_tile, c.row,
                                                            depth);
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace omniattn::detail::cpu
HWY_AFTER_NAMESPACE();

#endif  // OMNIATTN_CPU_TILE_GEMM_INL_H_
