// kv_cache_append on the CPU: tokens land at seq_lens[b] + t through the block table, rotary embedding in both
// conventions (checked against the rotation written out here), lengths advance, append-then-decode equals
// decoding the full cache; bad arguments are omniattn::Error.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_decode_support.hpp"

namespace omniattn::testing {
namespace {

// Element c of (page, slot, head) of a [pages, page_size, H, dim] pool.
double pool_at(const HostTensor& pool, int64_t page, int64_t slot, int64_t h, int64_t c) {
  const auto& s = pool.view().shape;
  return pool.get(((page * s[1] + slot) * s[2] + h) * s[3] + c);
}

struct RotaryTables {
  HostTensor cos, sin;
  RotaryTables(int64_t positions, int64_t half) : cos(DType::f32, {positions, half}), sin(DType::f32, {positions, half}) {
    for (int64_t p = 0; p < positions; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(p) * std::pow(10000.0, -2.0 * static_cast<double>(i) / (2.0 * half));
        cos.set(p * half + i, std::cos(angle));
        sin.set(p * half + i, std::sin(angle));
      }
  }
};

// The rotation of element c of vector x (dim d, rotary_dim r) at `position`, written out independently of the
// library: half-split pairs (i, i + r/2), interleaved pairs (2i, 2i+1).
double rotated(const std::vector<double>& x, int64_t c, int64_t r, bool interleaved, const RotaryTables& t,
               int64_t position) {
  if (c >= r) return x[c];
  const int64_t half = r / 2;
  int64_t i, partner;
  bool first;
  if (interleaved) {
    i = c / 2, first = c % 2 == 0, partner = first ? c + 1 : c - 1;
  } else {
    i = c % half, first = c < half, partner = first ? c + half : c - half;
  }
  const double cs = t.cos.get(position * half + i), sn = t.sin.get(position * half + i);
  return first ? x[c] * cs - x[partner] * sn : x[partner] * sn + x[c] * cs;
}

TEST(KvCacheAppend, LandsThroughTheBlockTable) {
  for (int64_t page : {1, 16, 0}) {
    DecodeShape s;
    s.dtype = DType::bf16;
    s.lens = {5, 0, 31};
    s.page_size = page;
    s.hkv = 2;
    s.d = s.dv = 16;
    s.spare_columns = 3;
    s.spare_pages = 9;
    DecodeCase c(s, DecodeFeatures{});
    const int64_t sn = 3;
    HostTensor k_new = random_normal(s.dtype, {3, sn, 2, 16}), v_new = random_normal(s.dtype, {3, sn, 2, 16});
    HostTensor lens = c.lens;
    if (page > 0) {  // the columns the new tokens need hold out-of-range ids: give them spare pages
      size_t next = 0;
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t col = (s.lens[b] + page - 1) / page; col < (s.lens[b] + sn + page - 1) / page; ++col)
          c.table.set(b * c.max_pages + col, static_cast<double>(c.spare_ids.at(next++)));
    }
    kv_cache_append(c.cache(c.k, c.v, c.table, lens), k_new, v_new);
    for (int64_t b = 0; b < 3; ++b) {
      EXPECT_EQ(lens.get(b), s.lens[b] + sn);
      for (int64_t t = 0; t < sn; ++t) {
        const int64_t pos = s.lens[b] + t;
        const int64_t pg = page > 0 ? static_cast<int64_t>(c.table.get(b * c.max_pages + pos / page)) : b;
        const int64_t slot = page > 0 ? pos % page : pos;
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t i = 0; i < 16; ++i) {
            ASSERT_EQ(pool_at(c.k, pg, slot, h, i), k_new.get(((b * sn + t) * 2 + h) * 16 + i));
            ASSERT_EQ(pool_at(c.v, pg, slot, h, i), v_new.get(((b * sn + t) * 2 + h) * 16 + i));
          }
      }
    }
  }
}

TEST(KvCacheAppend, RotaryBothConventionsAndQueryInPlace) {
  for (bool interleaved : {false, true})
    for (int64_t rotary_dim : {32, 16}) {  // full and partial rotation
      DecodeShape s;
      s.dtype = DType::f64;  // exact storage: the check compares the rotation itself
      s.lens = {7, 20};
      s.page_size = 16;
      s.hkv = 1;
      s.d = s.dv = 32;
      DecodeCase c(s, DecodeFeatures{});
      const int64_t sn = 2;
      HostTensor k_new = random_normal(s.dtype, {2, sn, 1, 32}), v_new = random_normal(s.dtype, {2, sn, 1, 32});
      HostTensor q = random_normal(s.dtype, {2, sn, 3, 32}), q_before = q;
      RotaryTables tables(64, rotary_dim / 2);
      AppendOptions o;
      o.rotary = Rotary{tables.cos, tables.sin, interleaved ? RotaryStyle::interleaved : RotaryStyle::half_split};
      o.q = q.view();
      kv_cache_append(c.host_cache(), k_new, v_new, o);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < sn; ++t) {
          const int64_t pos = s.lens[b] + t;
          const int64_t pg = static_cast<int64_t>(c.table.get(b * c.max_pages + pos / 16));
          std::vector<double> x(32), xq(32);
          for (int64_t i = 0; i < 32; ++i) x[i] = k_new.get((b * sn + t) * 32 + i);
          for (int64_t i = 0; i < 32; ++i)
            ASSERT_NEAR(pool_at(c.k, pg, pos % 16, 0, i), rotated(x, i, rotary_dim, interleaved, tables, pos), 1e-6);
          for (int64_t h = 0; h < 3; ++h) {
            for (int64_t i = 0; i < 32; ++i) xq[i] = q_before.get(((b * sn + t) * 3 + h) * 32 + i);
            for (int64_t i = 0; i < 32; ++i)
              ASSERT_NEAR(q.get(((b * sn + t) * 3 + h) * 32 + i), rotated(xq, i, rotary_dim, interleaved, tables, pos),
                          1e-6);
          }
        }
    }
}

// Decoding after appending the last Sq tokens equals decoding a cache that held them from the start.
TEST(KvCacheAppend, AppendThenDecodeMatchesTheFullCache) {
  DecodeShape s;
  s.dtype = DType::f32;
  s.lens = {40, 9};
  s.sq = 3;
  s.hq = 4;
  s.hkv = 2;
  s.d = s.dv = 16;
  s.page_size = 16;
  const DecodeCase full(s, DecodeFeatures{});
  // The same pages with the last Sq tokens blanked, then appended back.
  HostTensor k = full.k, v = full.v, lens = full.lens;
  HostTensor k_new(s.dtype, {2, s.sq, 2, 16}), v_new(s.dtype, {2, s.sq, 2, 16});
  for (int64_t b = 0; b < 2; ++b) {
    lens.set(b, static_cast<double>(s.lens[b] - s.sq));
    for (int64_t t = 0; t < s.sq; ++t) {
      const int64_t pos = s.lens[b] - s.sq + t;
      const int64_t pg = static_cast<int64_t>(full.table.get(b * full.max_pages + pos / 16));
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < 16; ++i) {
          const int64_t at = ((pg * 16 + pos % 16) * 2 + h) * 16 + i, dst = ((b * s.sq + t) * 2 + h) * 16 + i;
          k_new.set(dst, k.get(at));
          v_new.set(dst, v.get(at));
          k.set(at, NAN);
          v.set(at, NAN);
        }
    }
  }
  const KVCache cache = full.cache(k, v, full.table, lens);
  kv_cache_append(cache, k_new, v_new);
  HostTensor out = full.out_like(s.dtype), lse = full.lse_like();
  poison(out);
  attention_decode(full.q, cache, {out, lse.view()}, full.host_options());
  EXPECT_TRUE(full.check(out, lse));
}

std::string append_error(const KVCache& cache, const TensorView& k_new, const TensorView& v_new,
                         const AppendOptions& o = {}) {
  try {
    kv_cache_append(cache, k_new, v_new, o);
  } catch (const Error& e) {
    return e.argument();
  }
  return "";
}

TEST(KvCacheAppend, BadArguments) {
  DecodeShape s;
  s.lens = {16, 3};
  s.page_size = 16;
  s.hkv = 1;
  s.d = s.dv = 16;
  DecodeCase c(s, DecodeFeatures{});
  HostTensor k1 = random_normal(s.dtype, {2, 1, 1, 16}), v1 = random_normal(s.dtype, {2, 1, 1, 16});
  // Sequence 0's next token needs table column 1, which holds an out-of-range id.
  HostTensor lens_before = c.lens;
  EXPECT_EQ(append_error(c.host_cache(), k1, v1), "cache.block_table");
  EXPECT_EQ(c.lens.get(0), lens_before.get(0));  // nothing advanced
  // Past the capacity (2 columns of 16).
  HostTensor k40 = random_normal(s.dtype, {2, 20, 1, 16}), v40 = random_normal(s.dtype, {2, 20, 1, 16});
  EXPECT_EQ(append_error(c.host_cache(), k40, v40), "cache.seq_lens");
  c.table.set(1, 0);  // a real page for sequence 0's second column
  EXPECT_EQ(append_error(c.host_cache(), k1, v1.to(DType::f16)), "v_new");
  HostTensor k_heads = random_normal(s.dtype, {2, 1, 2, 16});
  EXPECT_EQ(append_error(c.host_cache(), k_heads, v1), "k_new");
  AppendOptions o;
  HostTensor q = random_normal(s.dtype, {2, 1, 4, 16});
  o.q = q.view();
  EXPECT_EQ(append_error(c.host_cache(), k1, v1, o), "options.q");
  RotaryTables short_tables(10, 8);  // positions up to 16 + 1 are needed
  o.rotary = Rotary{short_tables.cos, short_tables.sin, RotaryStyle::half_split};
  EXPECT_EQ(append_error(c.host_cache(), k1, v1, o), "options.rotary.cos");
  RotaryTables wide(64, 9);  // rotary_dim 18 > D
  o.rotary = Rotary{wide.cos, wide.sin, RotaryStyle::half_split};
  EXPECT_EQ(append_error(c.host_cache(), k1, v1, o), "options.rotary.cos");
  // New tokens read from the pool they are written to.
  const TensorView k_alias = TensorView::contiguous(c.k.view().data, s.dtype, {2, 1, 1, 16});
  EXPECT_EQ(append_error(c.host_cache(), k_alias, v1), "cache.k");
}

}  // namespace
}  // namespace omniattn::testing
