#pragma once
// The subcommands of the `omniattn` tool. Each returns the process exit code; bad arguments are
// thrown as omniattn::Error (main turns them into one line on stderr and exit code 2).
#include <cstdint>
#include <string>
#include <vector>

namespace omniattn::cli {

struct BenchOptions {
  std::vector<std::string> ops;                            // fwd, bwd
  std::vector<std::string> masks;                          // none, causal, window
  std::vector<std::string> dtypes;                         // f32, bf16, f16
  std::vector<int64_t> seqlens;                            // query lengths; keys as many unless seqlen_k is set
  int64_t seqlen_k = 0;                                    // 0: Sk = Sq
  int64_t batch = 0;                                       // 0: 1 on the CPU, 16384 / Sq tokens on a GPU
  int64_t heads = 16, kv_heads = 0, dim = 128, dim_v = 0;  // 0: kv_heads = heads, dim_v = dim
  int64_t window = 512;                                    // window_left of the "window" mask (causal sliding window)
  std::string device = "auto";                             // auto (best present), cpu, cuda, cuda:N
  std::string backend = "auto";                            // auto, cpu, cuda_sm80, cuda_sm90, reference
  std::string impl;   // JSON impl name; default omniattn (auto) or omniattn_<backend>
  std::string suite;  // suite name in the default JSON path
  int repeats = 5, warmup = 1, threads = 0;
  int64_t check_rows = 32;  // rows compared with the float64 reference (0: no check)
  uint64_t seed = 0;
  std::string json_path;  // empty: the default (see docs/cli.md); "none": do not write
  bool custom = false;    // any shape/mask/dtype/op flag given: not the default suite
};
int run_bench(const BenchOptions& options, const std::string& command_line);

struct VerifyOptions {
  int cases = 40;
  bool quick = false;
  uint64_t seed = 0;                  // 0: a fresh random seed (printed)
  int only = -1;                      // run only this case index (replays a failure with the same seed)
  std::vector<std::string> backends;  // default: every available backend but the reference
  std::vector<std::string> dtypes;    // default: f32, bf16, f16
  bool forward_only = false;
  bool verbose = false;
};
int run_verify(const VerifyOptions& options);

int run_info();

struct PeakOptions {
  int threads = 0;       // 0: all (OpenMP's default)
  double seconds = 0.5;  // per trial
  bool json = false;
};
int run_peak(const PeakOptions& options);

/// Applies a thread count (0 leaves OpenMP's default) and returns the number of threads in use.
int apply_threads(int threads);

}  // namespace omniattn::cli
