// CPU decode: OpenMP over (sequence, KV head, key split). A task keeps all query heads of its KV head and all
// Sq tokens as rows ("GQA packed": each K/V row is converted to float once and used by group * Sq rows),
// walks its key range through the pages in blocks, and keeps an online softmax per row. Splits of one
// (sequence, KV head) are merged through their LSE in f32, the sink logit joining the denominator at the end.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.hpp"
#include "decode/decode_cpu.hpp"
#include "decode/key_ranges.hpp"

namespace omniattn::detail::cpu_decode {
namespace {

constexpr int64_t kKeyBlock = 32;          // keys scored before one softmax update
constexpr int64_t kMinKeysPerSplit = 512;  // below this a split costs more in merging than it saves

// One split's unnormalized result: rows (t * group + g) x Dv, and per row the max logit and the sum.
struct Partial {
  std::vector<float> o, max, sum;
};

template <class T>
void run_split(const DecodeProblem& p, const KeyRanges& ranges, int64_t b, int64_t kvh, int64_t v0, int64_t v1,
               Partial& part) {
  const CacheGeometry& g = p.cache;
  const int64_t group = p.group(), rows = group * p.sq, d = p.d, dv = p.dv;
  const SequenceMask mask = p.mask(b);
  std::vector<float> q(static_cast<size_t>(rows * d));  // (rows, D)
  std::vector<ScoreMod<float>> mod(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = r / group, h = kvh * group + r % group;
    const T* src = p.q.at<const T>(b, t, h);
    for (int64_t c = 0; c < d; ++c) q[r * d + c] = to_float(src[c]);
    mod[r] = p.score_mod<float>(b, h);
  }
  part.o.assign(static_cast<size_t>(rows * dv), 0.f);
  part.max.assign(static_cast<size_t>(rows), -std::numeric_limits<float>::infinity());
  part.sum.assign(static_cast<size_t>(rows), 0.f);
  std::vector<float> k(static_cast<size_t>(kKeyBlock * d)), v(static_cast<size_t>(kKeyBlock * dv));  // (keys, D)
  std::vector<float> s(static_cast<size_t>(rows * kKeyBlock));                                       // (rows, keys)
  std::vector<int64_t> keys(kKeyBlock);
  for (int64_t vb = v0; vb < v1; vb += kKeyBlock) {
    const int64_t n = std::min(kKeyBlock, v1 - vb);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = ranges.key(vb + i), page = g.page_of(b, j), slot = j % g.page_size;
      keys[i] = j;
      const T* kr = static_cast<const T*>(g.k.data) + page * g.k.page + slot * g.k.token + kvh * g.k.head;
      const T* vr = static_cast<const T*>(g.v.data) + page * g.v.page + slot * g.v.token + kvh * g.v.head;
      for (int64_t c = 0; c < d; ++c) k[i * d + c] = to_float(kr[c]);
      for (int64_t c = 0; c < dv; ++c) v[i * dv + c] = to_float(vr[c]);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = r / group;
      float* sr = &s[r * kKeyBlock];
      float block_max = part.max[r];
      for (int64_t i = 0; i < n; ++i) {
        if (!mask.visible(t, keys[i])) {
          sr[i] = -std::numeric_limits<float>::infinity();
          continue;
        }
        float dot = 0.f;
        const float* qr = &q[r * d];
        const float* kr = &k[i * d];
        for (int64_t c = 0; c < d; ++c) dot += qr[c] * kr[c];
        sr[i] = mod[r].logit(dot, mask.diag(t), keys[i]);
        block_max = std::max(block_max, sr[i]);
      }
      if (block_max == -std::numeric_limits<float>::infinity()) continue;  // nothing visible yet
      const float rescale = std::exp(part.max[r] - block_max);           // exp(-inf) = 0 for a fresh row
      float* o = &part.o[r * dv];
      if (rescale != 1.f)
        for (int64_t c = 0; c < dv; ++c) o[c] *= rescale;
      float sum = part.sum[r] * rescale;
      for (int64_t i = 0; i < n; ++i) {
        const float pr = std::exp(sr[i] - block_max);
        if (pr == 0.f) continue;
        sum += pr;
        const float* vr = &v[i * dv];
        for (int64_t c = 0; c < dv; ++c) o[c] += pr * vr[c];
      }
      part.max[r] = block_max;
      part.sum[r] = sum;
    }
  }
}

// Merges the splits of (b, kvh) and writes O (and LSE).
template <class T>
void merge(const DecodeProblem& p, int64_t b, int64_t kvh, const Partial* parts, int64_t count) {
  const int64_t group = p.group(), rows = group * p.sq, dv = p.dv;
  std::vector<float> o(static_cast<size_t>(dv));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = r / group, h = kvh * group + r % group;
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < count; ++s) top = std::max(top, parts[s].max[r]);
    const float sink = p.sink_logits ? p.sink_logits[h] : -std::numeric_limits<float>::infinity();
    const float ref = std::max(top, sink);
    float lse = -std::numeric_limits<float>::infinity();
    std::fill(o.begin(), o.end(), 0.f);
    if (ref != -std::numeric_limits<float>::infinity()) {
      float denom = std::exp(sink - ref);  // 0 without a sink logit
      for (int64_t s = 0; s < count; ++s) {
        if (parts[s].sum[r] == 0.f) continue;
        const float w = std::exp(parts[s].max[r] - ref);
        denom += parts[s].sum[r] * w;
        for (int64_t c = 0; c < dv; ++c) o[c] += parts[s].o[r * dv + c] * w;
      }
      for (int64_t c = 0; c < dv; ++c) o[c] /= denom;
      lse = ref + std::log(denom);
    }
    T* dst = p.out.at<T>(b, t, h);
    for (int64_t c = 0; c < dv; ++c) dst[c] = from_float<T>(o[c]);
    if (p.lse) p.lse->at(b, h, t) = lse;
  }
}

template <class T>
void run_typed(const DecodeProblem& p) {
  // Key ranges and splits per sequence; tasks (b, kvh, split) in one flat list.
  std::vector<KeyRanges> ranges(static_cast<size_t>(p.batch));
  int64_t total_keys = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    ranges[b] = KeyRanges::of(p.mask(b), 1);
    total_keys += ranges[b].count();
  }
  const int64_t threads = omp_get_max_threads();
  std::vector<int64_t> splits(static_cast<size_t>(p.batch)), first_task(static_cast<size_t>(p.batch + 1), 0);
  for (int64_t b = 0; b < p.batch; ++b) {
    int64_t n = p.config.num_splits;
    if (n == 0) {  // enough tasks for every thread, none shorter than kMinKeysPerSplit
      const int64_t pairs = p.batch * p.hkv;
      const int64_t want = pairs >= 2 * threads ? 1 : (2 * threads + pairs - 1) / pairs;
      n = std::min(want, ranges[b].count() / kMinKeysPerSplit);
    }
    splits[b] = std::max<int64_t>(1, std::min(n, std::max<int64_t>(ranges[b].count(), 1)));
    first_task[b + 1] = first_task[b] + splits[b] * p.hkv;
  }
  (void)total_keys;
  const int64_t tasks = first_task[p.batch];
  std::vector<Partial> parts(static_cast<size_t>(tasks));
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = std::upper_bound(first_task.begin(), first_task.end(), task) - first_task.begin() - 1;
    const int64_t local = task - first_task[b], kvh = local / splits[b], split = local % splits[b];
    const int64_t n = ranges[b].count();
    run_split<T>(p, ranges[b], b, kvh, n * split / splits[b], n * (split + 1) / splits[b], parts[task]);
  }
  const int64_t pairs = p.batch * p.hkv;
#pragma omp parallel for schedule(dynamic)
  for (int64_t pair = 0; pair < pairs; ++pair) {
    const int64_t b = pair / p.hkv, kvh = pair % p.hkv;
    merge<T>(p, b, kvh, &parts[first_task[b] + kvh * splits[b]], splits[b]);
  }
}

}  // namespace

std::optional<std::string> refusal(const DecodeProblem& p) {
  if (!p.cache.device.is_cpu()) return std::string("runs on CPU caches only");
  if (p.cache.dtype == DType::f64) return std::string("supports f32, f16 and bf16 (f64: the reference backend)");
  return std::nullopt;
}

void run(const DecodeProblem& p) {
  switch (p.cache.dtype) {
    case DType::f32: run_typed<float>(p); break;
    case DType::f16: run_typed<f16_t>(p); break;
    case DType::bf16: run_typed<bf16_t>(p); break;
    default: break;
  }
}

}  // namespace omniattn::detail::cpu_decode
