#pragma once
// Command-line flags of omniattn_bench_gpu (see usage() in bench_cli.cpp for the meaning of each).
#include <cstdint>
#include <string>
#include <vector>

#include "omniattn/attention.hpp"

namespace omniattn::bench {

/// One timed operation: forward alone, backward alone (after an untimed forward), or both in one timing.
enum class Op { fwd, bwd, fwdbwd };
/// "fwd", "bwd", "fwd+bwd" (the results schema's op names, as ../shared/peers/peers_gpu.py writes them).
const char* op_name(Op op);
/// FLOPs of the op relative to the forward's 4·B·Hq·Sq·Sk·D: backward 2.5×, forward + backward 3.5×.
double op_flop_factor(Op op);

struct BenchFlags {
  std::string out_path;   // --out: JSON rows (empty: none)
  std::string commit = "unknown";
  std::string command;    // the command line, for the JSON
  std::vector<int64_t> lengths = {512, 1024, 2048, 4096, 8192, 16384, 32768};
  std::vector<int64_t> dims = {64, 128, 256};
  std::vector<DType> dtypes = {DType::bf16, DType::f16};
  std::vector<Backend> backends = {Backend::cuda_sm80};  // cuda_sm80, cuda_sm90 or automatic
  std::vector<Op> ops = {Op::fwd};
  int reps = 20, warmup = 3;
  bool gqa = true;     // + Hq = 32 / Hkv = 8 rows at D = 128 (bf16)
  bool check = false;  // small odd shapes, every output row checked
  bool deterministic = false;  // AttentionOptions::deterministic (backward rows get impl suffix "_det")
};

/// Parses argv; prints usage and exits 0 on --help, prints the problem and exits 1 on a bad flag.
BenchFlags parse_flags(int argc, char** argv);

}  // namespace omniattn::bench
