#include "verify_case.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>

namespace omniattn::cli {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Draw {
  std::mt19937_64 gen;
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(gen) < p; }
  int64_t uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); }
  template <class T>
  T pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(uniform(0, v.size() - 1))];
  }
  // The lengths that break tiles, or anything up to max.
  int64_t length(int64_t max) {
    const int64_t l = chance(0.5) ? pick<int64_t>({1, 17, 113, 128, 239}) : uniform(1, max);
    return std::min(l, max);
  }
};

double work(const VerifyCase& c) {
  double w = 0;
  for (size_t b = 0; b < c.q_lens.size(); ++b)
    w += static_cast<double>(c.q_lens[b]) * static_cast<double>(std::max<int64_t>(c.k_lens[b], 1));
  return w * static_cast<double>(c.hq * (c.d + c.dv));
}

}  // namespace

int64_t VerifyCase::total_q() const { return std::accumulate(q_lens.begin(), q_lens.end(), int64_t{0}); }
int64_t VerifyCase::total_k() const { return std::accumulate(k_lens.begin(), k_lens.end(), int64_t{0}); }

VerifyCase random_case(int index, uint64_t run_seed, const std::vector<DType>& dtypes, const CaseLimits& limits) {
  VerifyCase c;
  c.index = index;
  c.seed = splitmix64(run_seed ^ splitmix64(static_cast<uint64_t>(index)));
  Draw r{std::mt19937_64(c.seed)};
  c.dtype = r.pick(dtypes);
  // Shapes: redrawn until the naive references stay fast, so the tile-breaking lengths survive.
  for (int attempt = 0; attempt < 64; ++attempt) {
    c.hkv = r.pick<int64_t>({1, 1, 2, 3});
    c.hq = c.hkv * r.pick<int64_t>({1, 1, 2, 4, 7});
    c.d = r.pick<int64_t>({32, 64, 64, 128, 128, 256, 16, 40, 80, 96});
    c.dv = r.chance(0.8) ? c.d : r.pick<int64_t>({32, 64, 128});
    c.varlen = r.chance(0.25);
    c.batch = c.varlen ? r.uniform(1, 4) : r.uniform(1, 2);
    const int64_t sq = r.length(limits.max_len);
    const int64_t sk = r.chance(0.5) ? sq : r.length(limits.max_len);
    c.q_lens.clear();
    c.k_lens.clear();
    for (int64_t b = 0; b < c.batch; ++b) {
      if (c.varlen) {  // every sequence its own lengths, zero-length segments included
        c.q_lens.push_back(r.chance(0.1) ? 0 : r.length(limits.max_len));
        c.k_lens.push_back(r.chance(0.1) ? 0 : r.length(limits.max_len));
      } else {
        c.q_lens.push_back(sq);
        c.k_lens.push_back(sk);
      }
    }
    if (c.total_q() == 0) c.q_lens[0] = 1;
    if (work(c) <= limits.max_work) break;
  }
  while (work(c) > limits.max_work) {  // still too big after every attempt: halve the lengths
    for (auto* lens : {&c.q_lens, &c.k_lens})
      for (auto& l : *lens) l = (l + 1) / 2;
  }
  if (r.chance(0.15)) {
    std::vector<int64_t> used;
    for (int64_t k : c.k_lens) used.push_back(r.uniform(0, k));
    c.seqused_k = used;
  }
  // Mask: none, causal, or a window (causal or two-sided), sometimes with sink tokens.
  const int64_t mask = r.uniform(0, 9);
  if (mask >= 3 && mask < 6) c.causal = true;
  if (mask >= 6) {
    c.window_left = r.chance(0.8) ? r.uniform(0, 64) : -1;
    c.window_right = r.chance(0.5) ? 0 : r.pick<int64_t>({-1, 0, 1, 7, 33});
    c.causal = c.window_right == 0 && r.chance(0.5);
    if (r.chance(0.5)) c.sinks = r.uniform(1, 4);
  }
  if (r.chance(0.2)) c.softcap = r.pick<double>({2.0, 5.0, 30.0});
  if (r.chance(0.1)) c.softmax_scale = 0.5 / std::sqrt(static_cast<double>(c.d));
  if (r.chance(0.2)) c.alibi = r.chance(0.5) ? 1 : 2;
  c.sink_logits = r.chance(0.2);
  return c;
}

std::string VerifyCase::describe() const {
  std::string s = fmt::format("{} B{} ", to_string(dtype), batch);
  if (varlen)
    s += fmt::format("Sq[{}] Sk[{}]", fmt::join(q_lens, ","), fmt::join(k_lens, ","));
  else
    s += fmt::format("Sq{} Sk{}", q_lens[0], k_lens[0]);
  s += fmt::format(" H{}/{} D{}/{}", hq, hkv, d, dv);
  if (causal) s += " causal";
  if (window_left >= 0 || window_right >= 0) s += fmt::format(" win({},{})", window_left, window_right);
  if (sinks) s += fmt::format(" sinks{}", sinks);
  if (softcap > 0) s += fmt::format(" softcap{}", softcap);
  if (softmax_scale) s += fmt::format(" scale{:.4f}", *softmax_scale);
  if (alibi) s += alibi == 1 ? " alibi" : " alibi[B,H]";
  if (sink_logits) s += " sinklogits";
  if (seqused_k) s += fmt::format(" seqused_k[{}]", fmt::join(*seqused_k, ","));
  if (varlen) s += " varlen";
  return s;
}

AttentionOptions CaseTensors::options(Backend backend) const {
  AttentionOptions o = base;
  o.backend = backend;
  return o;
}

CaseTensors make_tensors(const VerifyCase& c) {
  CaseTensors t;
  std::mt19937_64 gen(c.seed + 1);
  const int64_t tq = c.total_q(), tk = c.total_k();
  const int64_t sq = c.q_lens[0], sk = c.k_lens[0];
  if (c.varlen) {
    t.q_shape = {tq, c.hq, c.d};
    t.k_shape = {tk, c.hkv, c.d};
    t.v_shape = {tk, c.hkv, c.dv};
    t.out_shape = {tq, c.hq, c.dv};
    t.lse_shape = {c.hq, tq};
  } else {
    t.q_shape = {c.batch, sq, c.hq, c.d};
    t.k_shape = {c.batch, sk, c.hkv, c.d};
    t.v_shape = {c.batch, sk, c.hkv, c.dv};
    t.out_shape = {c.batch, sq, c.hq, c.dv};
    t.lse_shape = {c.batch, c.hq, sq};
  }
  t.q = HostArray(c.dtype, t.q_shape);
  t.k = HostArray(c.dtype, t.k_shape);
  t.v = HostArray(c.dtype, t.v_shape);
  t.dout = HostArray(c.dtype, t.out_shape);
  for (HostArray* a : {&t.q, &t.k, &t.v, &t.dout}) a->fill_normal(gen);

  AttentionOptions& o = t.base;
  o.causal = c.causal;
  o.window_left = c.window_left;
  o.window_right = c.window_right;
  o.sinks = c.sinks;
  o.softcap = c.softcap;
  o.softmax_scale = c.softmax_scale;
  std::uniform_real_distribution<double> slope(0.01, 0.5);
  if (c.alibi) {
    t.alibi = c.alibi == 1 ? HostArray(DType::f32, {c.hq}) : HostArray(DType::f32, {c.batch, c.hq});
    for (int64_t i = 0; i < t.alibi.numel(); ++i) t.alibi.set(i, slope(gen));
    o.alibi_slopes = t.alibi.view();
  }
  if (c.sink_logits) {
    t.sink_logits = HostArray(DType::f32, {c.hq});
    t.sink_logits.fill_normal(gen);
    o.sink_logits = t.sink_logits.view();
  }
  if (c.varlen) {
    t.cu_q = HostArray(DType::i32, {c.batch + 1});
    t.cu_k = HostArray(DType::i32, {c.batch + 1});
    int64_t oq = 0, ok = 0;
    for (int64_t b = 0; b <= c.batch; ++b) {
      t.cu_q.set(b, static_cast<double>(oq));
      t.cu_k.set(b, static_cast<double>(ok));
      if (b < c.batch) oq += c.q_lens[b], ok += c.k_lens[b];
    }
    o.cu_seqlens_q = t.cu_q.view();
    o.cu_seqlens_k = t.cu_k.view();
  }
  if (c.seqused_k) {
    t.seqused = HostArray(DType::i32, {c.batch});
    for (int64_t b = 0; b < c.batch; ++b) t.seqused.set(b, static_cast<double>((*c.seqused_k)[b]));
    o.seqused_k = t.seqused.view();
  }
  return t;
}

}  // namespace omniattn::cli
