// Tile helpers of the CPU kernels: moving f32/bf16/f16 rows into f32 tiles (plain or transposed),
// storing f32 rows back rounded to nearest even, and the vector form of the score policy (ScoreMod)
// and of the mask (SequenceMask) on one row of a score tile.
// (Highway per-target header: included once per target by foreach_target.h.)
#if defined(OMNIATTN_CPU_TILE_OPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef OMNIATTN_CPU_TILE_OPS_INL_H_
#undef OMNIATTN_CPU_TILE_OPS_INL_H_
#else
#define OMNIATTN_CPU_TILE_OPS_INL_H_
#endif

#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/dtype.hpp"
#include "core/mask_policy.hpp"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace omniattn::detail::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
constexpr int64_t kLanes = static_cast<int64_t>(hn::MaxLanes(DF()));

inline int64_t RoundUpToLanes(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }
inline int64_t VecsFor(int64_t n) { return (n + kLanes - 1) / kLanes; }

// The Highway lane type with the same bits as our storage type.
template <class T> struct HwyLane { using type = T; };
template <> struct HwyLane<bf16_t> { using type = hwy::bfloat16_t; };
template <> struct HwyLane<f16_t> { using type = hwy::float16_t; };

/// e^x for the softmax's arguments (x <= 0 up to rounding; -inf and anything below -87 give 0), relative
/// error about 1.5 ulp. Cody-Waite reduction x = n·ln2 + r, |r| <= ln2/2, a degree-7 polynomial for e^r
/// (Cephes' expf coefficients) and 2^n added straight into the exponent bits: 16 operations, about two
/// thirds of the general Exp, which matters because it runs once per score.
HWY_INLINE VF ExpSoftmax(DF df, VF x) {
  const hn::RebindToSigned<DF> di;
  // x·log2(e) + 1.5·2^23 holds round(x·log2(e)) in its low mantissa bits.
  const VF shifter = hn::Set(df, 12582912.0f);
  const VF t = hn::MulAdd(x, hn::Set(df, 1.44269504088896341f), shifter);
  const VF n = hn::Sub(t, shifter);
  VF r = hn::NegMulAdd(n, hn::Set(df, 0.693359375f), x);  // ln2 in two parts: n·ln2 exact to 2^-32
  r = hn::NegMulAdd(n, hn::Set(df, -2.12194440e-4f), r);
  VF poly = hn::Set(df, 1.9875691500e-4f);
  poly = hn::MulAdd(poly, r, hn::Set(df, 1.3981999507e-3f));
  poly = hn::MulAdd(poly, r, hn::Set(df, 8.3334519073e-3f));
  poly = hn::MulAdd(poly, r, hn::Set(df, 4.1665795894e-2f));
  poly = hn::MulAdd(poly, r, hn::Set(df, 1.6666665459e-1f));
  poly = hn::MulAdd(poly, r, hn::Set(df, 5.0000001201e-1f));
  const VF e_r = hn::MulAdd(poly, hn::Mul(r, r), hn::Add(r, hn::Set(df, 1.0f)));  // 1 + r + r²·P(r)
  // Multiply by 2^n: n (two's complement, low bits of t) shifted into the exponent field.
  const auto bits = hn::Add(hn::BitCast(di, e_r), hn::ShiftLeft<23>(hn::BitCast(di, t)));
  return hn::IfThenElseZero(hn::Ge(x, hn::Set(df, -87.0f)), hn::BitCast(df, bits));
}

/// dst[0, n) = scale * src[0, n) in f32.
template <class T>
HWY_INLINE void LoadScaled(const T* HWY_RESTRICT src, int64_t n, float scale, float* HWY_RESTRICT dst) {
  const DF df;
  const VF vscale = hn::Set(df, scale);
  int64_t c = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; c + kLanes <= n; c += kLanes) hn::StoreU(hn::Mul(hn::LoadU(df, src + c), vscale), df, dst + c);
  } else {
    using L = typename HwyLane<T>::type;
    const hn::Rebind<L, DF> dl;
    const L* lanes = reinterpret_cast<const L*>(src);
    for (; c + kLanes <= n; c += kLanes)
      hn::StoreU(hn::Mul(hn::PromoteTo(df, hn::LoadU(dl, lanes + c)), vscale), df, dst + c);
  }
  for (; c < n; ++c) dst[c] = scale * to_float(src[c]);
}

/// f32 tile (rows, dst_row) from `rows` rows of `cols` elements (row stride src_row), times scale;
/// columns [cols, dst_row) are zero.
template <class T>
void PackRows(const T* src, int64_t src_row, int64_t rows, int64_t cols, float scale, float* dst, int64_t dst_row) {
  for (int64_t r = 0; r < rows; ++r) {
    LoadScaled(src + r * src_row, cols, scale, dst + r * dst_row);
    for (int64_t c = cols; c < dst_row; ++c) dst[r * dst_row + c] = 0.0f;
  }
}

/// Transposed f32 tile (cols, dst_row): dst[c * dst_row + r] = scale * src[r][c]; rows [rows, dst_row) are zero.
template <class T>
void PackTransposed(const T* src, int64_t src_row, int64_t rows, int64_t cols, float scale, float* dst,
                    int64_t dst_row) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = src + r * src_row;
    for (int64_t c = 0; c < cols; ++c) dst[c * dst_row + r] = scale * to_float(row[c]);
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = rows; r < dst_row; ++r) dst[c * dst_row + r] = 0.0f;
}

/// dst[0, n) = scale * src[0, n), rounded to nearest even in T.
template <class T>
HWY_INLINE void StoreScaled(const float* HWY_RESTRICT src, int64_t n, float scale, T* HWY_RESTRICT dst) {
  if constexpr (std::is_same_v<T, float>) {
    const DF df;
    const VF vscale = hn::Set(df, scale);
    int64_t c = 0;
    for (; c + kLanes <= n; c += kLanes) hn::StoreU(hn::Mul(hn::LoadU(df, src + c), vscale), df, dst + c);
    for (; c < n; ++c) dst[c] = scale * src[c];
  } else {
    for (int64_t c = 0; c < n; ++c) dst[c] = from_float<T>(scale * src[c]);
  }
}

/// dst[0, n) = src[0, n) / divisor, rounded to nearest even in T (one rounding in f32, unlike a reciprocal).
template <class T>
HWY_INLINE void StoreDivided(const float* HWY_RESTRICT src, int64_t n, float divisor, T* HWY_RESTRICT dst) {
  const DF df;
  const VF vdiv = hn::Set(df, divisor);
  int64_t c = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; c + kLanes <= n; c += kLanes) hn::StoreU(hn::Div(hn::LoadU(df, src + c), vdiv), df, dst + c);
  }
  for (; c < n; ++c) dst[c] = from_float<T>(src[c] / divisor);
}

/// ScoreMod on vectors: raw (already scaled) dot products -> logits, and d logit / d dot for backward.
struct VecScoreMod {
  float scale = 1, softcap = 0, inv_softcap = 0, alibi_slope = 0;
  explicit VecScoreMod(const ScoreMod<float>& m)
      : scale(m.scale), softcap(m.softcap), inv_softcap(m.softcap > 0 ? 1.0f / m.softcap : 0.0f),
        alibi_slope(m.alibi_slope) {}
  bool identity() const { return softcap <= 0 && alibi_slope == 0; }

  /// One row of `vecs` vectors of scaled scores s = scale·q·k, in place -> logits. The ALiBi distance of
  /// lane n of vector v is |dist0 + dist_step · (v·N + n)| (dist_step is +1 or -1). When `dlogit` is given
  /// it receives d logit / d s = 1 - tanh² (softcap only; without softcap that derivative is 1).
  /// (ScoreMod::dlogit_ddot is this times scale; the kernels apply scale through the pre-scaled Q.)
  HWY_INLINE void Apply(float* HWY_RESTRICT s, int64_t vecs, float dist0, float dist_step,
                        float* HWY_RESTRICT dlogit) const {
    const DF df;
    const VF lane_step = hn::Mul(hn::Iota(df, 0.0f), hn::Set(df, dist_step));
    for (int64_t v = 0; v < vecs; ++v) {
      VF x = hn::LoadU(df, s + v * kLanes);
      if (softcap > 0) {
        const VF t = hn::Tanh(df, hn::Mul(x, hn::Set(df, inv_softcap)));
        x = hn::Mul(t, hn::Set(df, softcap));
        if (dlogit) hn::StoreU(hn::NegMulAdd(t, t, hn::Set(df, 1.0f)), df, dlogit + v * kLanes);
      }
      if (alibi_slope != 0) {
        const VF dist = hn::Abs(hn::Add(hn::Set(df, dist0 + dist_step * static_cast<float>(v * kLanes)), lane_step));
        x = hn::NegMulAdd(hn::Set(df, alibi_slope), dist, x);
      }
      hn::StoreU(x, df, s + v * kLanes);
    }
  }
};

/// Per-query visibility of one query block: key_begin/key_end of each row, for vector compares.
/// Rows past the block's end get an empty range.
inline void FillKeyRanges(const SequenceMask& mask, int64_t q0, int64_t rows, int64_t padded_rows,
                          int32_t* key_begin, int32_t* key_end) {
  for (int64_t i = 0; i < padded_rows; ++i) {
    const bool real = i < rows;
    key_begin[i] = real ? static_cast<int32_t>(mask.key_begin(q0 + i)) : 0;
    key_end[i] = real ? static_cast<int32_t>(mask.key_end(q0 + i)) : 0;
  }
}

/// Key j against a row of queries (lanes): -inf where !mask.visible(i, j), i.e. where
/// j >= key_end(i) or (j < key_begin(i) and j >= sinks).
HWY_INLINE void MaskKeyRow(float* HWY_RESTRICT s, int64_t vecs, int64_t j, int64_t sinks,
                           const int32_t* HWY_RESTRICT key_begin, const int32_t* HWY_RESTRICT key_end) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const auto vj = hn::Set(di, static_cast<int32_t>(j));
  const VF neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  const bool sink_key = j < sinks;
  for (int64_t v = 0; v < vecs; ++v) {
    // (Highway 1.0 compares integers with Lt/Gt/Eq only.)
    auto shown = hn::Gt(hn::LoadU(di, key_end + v * kLanes), vj);
    if (!sink_key) shown = hn::AndNot(hn::Gt(hn::LoadU(di, key_begin + v * kLanes), vj), shown);
    float* sv = s + v * kLanes;
    hn::StoreU(hn::IfThenElse(hn::RebindMask(df, shown), hn::LoadU(df, sv), neg_inf), df, sv);
  }
}

// Key index x relative to the tile's first key j0, clamped to [0, n_keys].
inline int32_t OffsetInTile(int64_t x, int64_t j0, int64_t n_keys) {
  const int64_t r = x - j0;
  return static_cast<int32_t>(r < 0 ? 0 : (r > n_keys ? n_keys : r));
}

/// Query row against keys [j0, j0 + vecs·N) (lanes): keeps [0, min(sinks, end)) ∪ [begin, end) of the
/// row's visible keys, clipped to [j0, j0 + n_keys); everything else becomes -inf.
HWY_INLINE void MaskQueryRow(float* HWY_RESTRICT s, int64_t vecs, int64_t j0, int64_t n_keys, int64_t begin,
                             int64_t end, int64_t sinks) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const VF neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  const int32_t e = OffsetInTile(end, j0, n_keys), bgn = OffsetInTile(begin, j0, n_keys),
                snk = OffsetInTile(sinks < end ? sinks : end, j0, n_keys);
  const auto ve = hn::Set(di, e), vb = hn::Set(di, bgn), vs = hn::Set(di, snk);
  for (int64_t v = 0; v < vecs; ++v) {
    const auto j = hn::Iota(di, static_cast<int32_t>(v * kLanes));
    const auto shown = hn::Or(hn::AndNot(hn::Lt(j, vb), hn::Lt(j, ve)), hn::Lt(j, vs));
    float* sv = s + v * kLanes;
    hn::StoreU(hn::IfThenElse(hn::RebindMask(df, shown), hn::LoadU(df, sv), neg_inf), df, sv);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace omniattn::detail::cpu
HWY_AFTER_NAMESPACE();

#endif  // OMNIATTN_CPU_TILE_OPS_INL_H_
