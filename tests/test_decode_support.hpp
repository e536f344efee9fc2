#pragma once
// Decode test cases shared by the CPU tests (tests/test_decode*.cpp) and the GPU tests
// (tests/gpu/test_decode*.cpp): a paged (or contiguous) cache with shuffled pages and spare, NaN-filled pages,
// random inputs, and the oracle (float64 reference on the gathered K/V) with the same-precision naive result
// that sets the tolerance (FlashAttention's rule, support/test_util.hpp).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "decode/decode_problem.hpp"
#include "decode/decode_reference.hpp"
#include "support/test_util.hpp"

namespace omniattn::testing {

struct DecodeShape {
  DType dtype = DType::bf16;
  std::vector<int64_t> lens = {17};  // keys per sequence (B = lens.size())
  int64_t sq = 1, hq = 4, hkv = 1, d = 64, dv = 64;
  int64_t page_size = 16;  // 0: contiguous cache
  int64_t spare_pages = 3;    // unused pages, NaN-filled: a read through a wrong page id shows
  int64_t spare_columns = 1;  // block-table columns past the longest sequence (out-of-range ids, never read)
};

struct DecodeFeatures {
  bool causal = true;
  int64_t window_left = -1, window_right = -1, sinks = 0;
  double softcap = 0.0;
  bool alibi = false, alibi_per_batch = false, sink_logits = false;
  std::optional<double> scale;
};

inline std::string describe(const DecodeShape& s, const DecodeFeatures& f) {
  std::ostringstream o;
  o << to_string(s.dtype) << " B=" << s.lens.size() << " lens=[";
  for (size_t i = 0; i < s.lens.size() && i < 6; ++i) o << (i ? "," : "") << s.lens[i];
  o << (s.lens.size() > 6 ? ",..." : "") << "] Sq=" << s.sq << " Hq=" << s.hq << " Hkv=" << s.hkv << " D=" << s.d
    << " Dv=" << s.dv << " page=" << (s.page_size ? std::to_string(s.page_size) : "contiguous")
    << (f.causal ? " causal" : "") << " window=(" << f.window_left << "," << f.window_right << ") sinks=" << f.sinks
    << " softcap=" << f.softcap << (f.alibi ? (f.alibi_per_batch ? " alibi[B,H]" : " alibi[H]") : "")
    << (f.sink_logits ? " sink_logits" : "");
  return o.str();
}

/// Host tensors of one decode case (pages, table, lengths, q, options' tensors) and its oracle.
struct DecodeCase {
  DecodeShape shape;
  DecodeFeatures features;
  int64_t num_pages = 0, page_size = 0, max_pages = 0;
  std::vector<int64_t> spare_ids;  // pages no sequence uses
  HostTensor q, k, v, table, lens, alibi, sinks;
  HostTensor out64, lse64, out_naive, lse_naive;

  DecodeCase(const DecodeShape& s, const DecodeFeatures& f) : shape(s), features(f) {
    const int64_t b = static_cast<int64_t>(s.lens.size());
    const int64_t longest = std::max<int64_t>(1, *std::max_element(s.lens.begin(), s.lens.end()));
    if (s.page_size > 0) {
      page_size = s.page_size;
      max_pages = (longest + page_size - 1) / page_size + s.spare_columns;
      int64_t used = 0;
      for (int64_t len : s.lens) used += (len + page_size - 1) / page_size;
      num_pages = used + s.spare_pages;
    } else {
      page_size = longest + 5 * s.spare_columns;  // capacity past the longest sequence: unused NaN rows
      max_pages = 1;
      num_pages = b;
    }
    q = random_normal(s.dtype, {b, s.sq, s.hq, s.d});
    k = random_normal(s.dtype, {num_pages, page_size, s.hkv, s.d});
    v = random_normal(s.dtype, {num_pages, page_size, s.hkv, s.dv});
    lens = HostTensor(DType::i32, {b});
    for (int64_t i = 0; i < b; ++i) lens.set(i, static_cast<double>(s.lens[i]));
    // Rows past each sequence's end are NaN: a kernel that reads them unmasked fails.
    if (s.page_size > 0) {
      table = HostTensor(DType::i32, {b, max_pages});
      std::vector<int64_t> order(static_cast<size_t>(num_pages));
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng());
      std::vector<bool> used_page(static_cast<size_t>(num_pages), false);
      size_t next = 0;
      for (int64_t i = 0; i < b; ++i) {
        const int64_t pages = (s.lens[i] + page_size - 1) / page_size;
        for (int64_t j = 0; j < max_pages; ++j) {
          // Unused columns hold ids out of range: they must never be read.
          const int64_t id = j < pages ? order[next++] : (j % 2 ? -1 : num_pages + j);
          table.set(i * max_pages + j, static_cast<double>(id));
          if (j < pages) {
            used_page[id] = true;
            const int64_t tail = s.lens[i] - j * page_size;  // valid tokens in this page
            for (int64_t t = std::max<int64_t>(tail, 0); t < page_size; ++t) nan_token(id, t);
          }
        }
      }
      for (int64_t id = 0; id < num_pages; ++id)
        if (!used_page[id]) {
          spare_ids.push_back(id);
          for (int64_t t = 0; t < page_size; ++t) nan_token(id, t);
        }
    } else {
      for (int64_t i = 0; i < b; ++i)
        for (int64_t t = s.lens[i]; t < page_size; ++t) nan_token(i, t);
    }
    if (f.alibi) {
      alibi = f.alibi_per_batch ? HostTensor(DType::f32, {b, s.hq}) : HostTensor(DType::f32, {s.hq});
      std::uniform_real_distribution<double> u(0.01, 0.5);
      for (int64_t i = 0; i < alibi.numel(); ++i) alibi.set(i, u(rng()));
    }
    if (f.sink_logits) {
      sinks = HostTensor(DType::f32, {s.hq});
      fill_normal(sinks, 1.0, 0.5);
    }
    compute_oracle();
  }

  int64_t batch() const { return static_cast<int64_t>(shape.lens.size()); }

  /// Options with the given views of the ALiBi slopes and sink logits (host or device copies).
  AttentionOptions options(const TensorView* alibi_view, const TensorView* sinks_view) const {
    AttentionOptions o;
    o.causal = features.causal;
    o.window_left = features.window_left;
    o.window_right = features.window_right;
    o.sinks = features.sinks;
    o.softcap = features.softcap;
    o.softmax_scale = features.scale;
    if (features.alibi) o.alibi_slopes = *alibi_view;
    if (features.sink_logits) o.sink_logits = *sinks_view;
    return o;
  }
  AttentionOptions host_options() const { return options(&alibi.view(), &sinks.view()); }

  /// A cache over the given tensors (host or device), paged or contiguous as the case is.
  KVCache cache(const TensorView& k_view, const TensorView& v_view, const TensorView& table_view,
                const TensorView& lens_view) const {
    if (shape.page_size > 0) return KVCache::paged(k_view, v_view, table_view, lens_view);
    return KVCache::contiguous(k_view, v_view, lens_view);
  }
  KVCache host_cache() const { return cache(k, v, table, lens); }

  /// Strides of a head-major pool (FlashInfer's HND: [pages, Hkv, page_size, dim] in memory) viewed as the cache's
  /// (pages, page_size, Hkv, dim).
  std::vector<int64_t> head_major_strides(int64_t dim) const {
    return {shape.hkv * page_size * dim, dim, page_size * dim, 1};
  }

  /// A head-major copy of the pool `t` (k or v, `dim` columns) and its (pages, page_size, Hkv, dim) view.
  struct HeadMajorPool {
    HostTensor storage;  // [pages, Hkv, page_size, dim]
    TensorView view;
  };
  HeadMajorPool head_major(const HostTensor& t, int64_t dim) const {
    HeadMajorPool p{HostTensor(t.dtype(), {num_pages, shape.hkv, page_size, dim}), {}};
    for (int64_t pg = 0; pg < num_pages; ++pg)
      for (int64_t slot = 0; slot < page_size; ++slot)
        for (int64_t h = 0; h < shape.hkv; ++h)
          for (int64_t c = 0; c < dim; ++c)
            p.storage.set(((pg * shape.hkv + h) * page_size + slot) * dim + c,
                          t.get(((pg * page_size + slot) * shape.hkv + h) * dim + c));
    p.view = t.view();
    p.view.data = p.storage.view().data;
    const std::vector<int64_t> strides = head_major_strides(dim);
    std::copy(strides.begin(), strides.end(), p.view.stride.begin());
    return p;
  }

  HostTensor out_like(DType dtype) const { return HostTensor(dtype, {batch(), shape.sq, shape.hq, shape.dv}); }
  HostTensor lse_like() const { return HostTensor(DType::f32, {batch(), shape.hq, shape.sq}); }

  /// Checks O and LSE against the oracle (and that no poisoned element is left).
  ::testing::AssertionResult check(const HostTensor& out, const HostTensor& lse) const {
    auto r = close(out, out_naive, out64, shape.dtype, "out");
    if (!r) return r << " [" << describe(shape, features) << "]";
    r = close(lse, lse_naive, lse64, DType::f32, "lse");
    if (!r) return r << " [" << describe(shape, features) << "]";
    return r;
  }

 private:
  void nan_token(int64_t page, int64_t t) {
    for (int64_t h = 0; h < shape.hkv; ++h) {
      for (int64_t c = 0; c < shape.d; ++c) k.set(((page * page_size + t) * shape.hkv + h) * shape.d + c, NAN);
      for (int64_t c = 0; c < shape.dv; ++c) v.set(((page * page_size + t) * shape.hkv + h) * shape.dv + c, NAN);
    }
  }

  void compute_oracle() {
    HostTensor q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
    out64 = out_like(DType::f64);
    lse64 = lse_like();
    AttentionOptions o = host_options();
    o.backend = Backend::reference;
    attention_decode(q64, cache(k64, v64, table, lens), {out64, lse64.view()}, o);
    out_naive = out_like(shape.dtype);
    lse_naive = lse_like();
    const detail::DecodeProblem p =
        detail::make_decode_problem(q, host_cache(), {out_naive, lse_naive.view()}, host_options(), {});
    detail::reference::decode(p, /*lowp=*/true);
  }

  // The tolerance rule, with a floor for f32 (whose naive error can be ~0): 2e-6 * (1 + max|ref|).
  static ::testing::AssertionResult close(const HostTensor& ours, const HostTensor& naive, const HostTensor& ref64,
                                          DType dtype, const char* what) {
    ::testing::AssertionResult rule = within_tolerance(ours, naive, ref64, dtype, what);
    if (rule || dtype != DType::f32) return rule;
    double ref_max = 0;
    for (int64_t i = 0; i < ref64.numel(); ++i)
      if (std::isfinite(ref64.get(i))) ref_max = std::max(ref_max, std::abs(ref64.get(i)));
    const double err = max_abs_diff(ours, ref64), bound = 2e-6 * (1.0 + ref_max);
    if (err <= bound) return ::testing::AssertionSuccess();
    return rule << " and > the f32 floor " << bound;
  }
};

}  // namespace omniattn::testing
