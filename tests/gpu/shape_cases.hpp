#pragma once
// The shape sweeps that the forward and backward suites of every CUDA backend share: one list each, run by each
// suite with its own checker (check_sm80, check_sm80_backward) from its own base case (backend, head dim).
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "gpu/sm80_case.hpp"

namespace omniattn::testing {

/// bf16 and f16 x the (D, Dv) pairs x causal or not; B = 2, 239 tokens (not a multiple of any tile).
inline std::vector<Sm80Case> head_dim_cases(const Sm80Case& base,
                                            std::initializer_list<std::pair<int64_t, int64_t>> dims) {
  std::vector<Sm80Case> cases;
  for (DType dtype : {DType::bf16, DType::f16})
    for (const auto& [d, dv] : dims)
      for (bool causal : {false, true}) {
        Sm80Case c = base;
        c.dtype = dtype;
        c.d = d;
        c.dv = dv;
        c.batch = 2;
        c.sq = c.sk = 239;
        c.causal = causal;
        cases.push_back(c);
      }
  return cases;
}

/// Sq = Sk in {1, 17, 113, 239, 799} (lengths that break the tiling) x causal or not, B = 1, each head dim.
inline std::vector<Sm80Case> odd_length_cases(const Sm80Case& base, std::initializer_list<int64_t> dims) {
  std::vector<Sm80Case> cases;
  for (int64_t d : dims)
    for (int64_t n : {1, 17, 113, 239, 799})
      for (bool causal : {false, true}) {
        Sm80Case c = base;
        c.d = d;
        c.batch = 1;
        c.sq = c.sk = n;
        c.causal = causal;
        cases.push_back(c);
      }
  return cases;
}

/// Sq != Sk (either longer, down to one token) x causal or not (bottom-right aligned: with Sq > Sk the first
/// rows see nothing).
inline std::vector<Sm80Case> unequal_length_cases(const Sm80Case& base) {
  std::vector<Sm80Case> cases;
  const int64_t shapes[][2] = {{1, 799}, {17, 239}, {239, 17}, {799, 113}, {113, 799}, {128, 1}};
  for (const auto& s : shapes)
    for (bool causal : {false, true}) {
      Sm80Case c = base;
      c.sq = s[0];
      c.sk = s[1];
      c.causal = causal;
      cases.push_back(c);
    }
  return cases;
}

/// Windows (left, right; -1 unbounded) over Sq = Sk, Sq < Sk and Sq > Sk.
inline std::vector<Sm80Case> window_cases(const Sm80Case& base,
                                          std::initializer_list<std::pair<int64_t, int64_t>> windows) {
  std::vector<Sm80Case> cases;
  for (const auto& [left, right] : windows)
    for (const auto& [sq, sk] : {std::pair<int64_t, int64_t>{239, 239}, {113, 400}, {400, 113}}) {
      Sm80Case c = base;
      c.window_left = left;
      c.window_right = right;
      c.sq = sq;
      c.sk = sk;
      cases.push_back(c);
    }
  return cases;
}

/// Varlen with empty query and key segments (D = 128, 3 heads), causal or not.
inline std::vector<Sm80Case> varlen_empty_segment_cases(const Sm80Case& base) {
  std::vector<Sm80Case> cases;
  for (bool causal : {false, true}) {
    Sm80Case c = base;
    c.d = 128;
    c.hq = c.hkv = 3;
    c.q_lens = {0, 17, 113, 5, 0, 239, 1};
    c.k_lens = {13, 0, 239, 5, 7, 300, 1};
    c.causal = causal;
    cases.push_back(c);
  }
  return cases;
}

/// Varlen with GQA (6 / 2 heads), a causal window and sinks.
inline Sm80Case varlen_gqa_window_case(const Sm80Case& base) {
  Sm80Case c = base;
  c.hq = 6;
  c.hkv = 2;
  c.q_lens = {64, 1, 130};
  c.k_lens = {64, 200, 129};
  c.causal = true;
  c.window_left = 48;
  c.sinks = 2;
  return c;
}

}  // namespace omniattn::testing
