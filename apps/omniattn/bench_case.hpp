#pragma once
// One benchmark case: shapes, mask and dtype, its FLOP and byte counts, and the timing of one call.
#include <cstdint>
#include <optional>
#include <string>

#include "omniattn/omniattn.hpp"

namespace omniattn::cli {

struct BenchCase {
  std::string op = "fwd";     // fwd | bwd
  std::string mask = "none";  // none | causal | window
  DType dtype = DType::f32;
  int64_t batch = 1, hq = 16, hkv = 16, sq = 4096, sk = 4096, d = 128, dv = 128;
  int64_t window = 512;  // window_left of the "window" mask

  AttentionOptions options() const;
  /// One line that names the case ("fwd causal f32 B1 H16/16 S4096x4096 D128").
  std::string name() const;
};

/// What one case measured.
struct BenchResult {
  std::string backend;  // the backend that ran ("cpu", "cuda_sm80", ...)
  double ms = 0;        // median over repeats
  double tflops = 0, tbps = 0;
  double density = 1;             // visible (query, key) pairs / (Sq * Sk)
  std::optional<double> rel_err;  // vs float64 reference on the checked rows
  std::string skipped;            // non-empty: why the case did not run
};

struct TimingSettings {
  Device device = Device::cpu();
  Backend backend = Backend::automatic;
  bool allow_reference = false;  // run a case even if only the (slow) reference backend takes it
  int repeats = 5, warmup = 1;
  int64_t check_rows = 32;
  uint64_t seed = 0;
  /// Called before each timed repetition (progress display): (repetition index, total).
  void (*progress)(void* context, int done, int total) = nullptr;
  void* progress_context = nullptr;
};

/// Runs the case: random inputs, warm-up, timed repeats, accuracy on the last rows.
BenchResult run_case(const BenchCase& c, const TimingSettings& settings);

}  // namespace omniattn::cli
