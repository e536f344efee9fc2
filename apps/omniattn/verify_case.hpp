#pragma once
// A random attention call for `omniattn verify`: shapes that break tiling (1, 17, 113 tokens, Sq != Sk,
// zero-length segments, 7 query heads on one KV head, Dk != Dv) and every option, drawn from one seed
// so that a failing case can be replayed alone.
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "host_array.hpp"

namespace omniattn::cli {

struct VerifyCase {
  int index = 0;
  uint64_t seed = 0;  // the case's own seed (derived from the run seed and the index)
  DType dtype = DType::f32;
  bool varlen = false;
  int64_t batch = 1, hq = 1, hkv = 1, d = 64, dv = 64;
  std::vector<int64_t> q_lens, k_lens;  // per sequence (dense: all equal)
  std::optional<std::vector<int64_t>> seqused_k;
  bool causal = false;
  int64_t window_left = -1, window_right = -1, sinks = 0;
  double softcap = 0;
  std::optional<double> softmax_scale;
  int alibi = 0;  // 0: none, 1: slopes per head [Hq], 2: per batch and head [B, Hq]
  bool sink_logits = false;

  int64_t total_q() const;
  int64_t total_k() const;
  /// "bf16 B2 Sq17 Sk113 H4/2 D64/32 causal win(8,0) sinks1 softcap5 alibi sinklogits varlen".
  std::string describe() const;
};

struct CaseLimits {
  int64_t max_len = 300;  // longest sequence drawn
  double max_work = 4e7;  // cap on Σ Sq·Sk·Hq·(D+Dv): bounds the naive references' time
};

VerifyCase random_case(int index, uint64_t run_seed, const std::vector<DType>& dtypes, const CaseLimits& limits);

/// The tensors of one case, in its dtype, and the AttentionOptions pointing at them.
struct CaseTensors {
  HostArray q, k, v, dout;
  HostArray alibi, sink_logits, cu_q, cu_k, seqused;  // f32 / i32; empty when unused
  std::vector<int64_t> q_shape, k_shape, v_shape, out_shape, lse_shape;
  AttentionOptions options(Backend backend) const;

 private:
  friend CaseTensors make_tensors(const VerifyCase& c);
  AttentionOptions base;
};
CaseTensors make_tensors(const VerifyCase& c);

}  // namespace omniattn::cli
