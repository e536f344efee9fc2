// `omniattn peak`: the measured fp32 FMA peak of this CPU, one FMA loop per thread, all threads at once.
// The benchmark scripts divide attention TFLOP/s by it ("fraction of peak").
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

#include "commands.hpp"
#include "fma_peak.hpp"
#include "machine.hpp"

namespace omniattn::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// TFLOP/s of `threads` threads each running `iterations` FMA rounds (2 flops per lane per FMA).
double measure(int threads, int64_t iterations, int64_t& lanes) {
  std::vector<float> sinks(static_cast<size_t>(threads) * 16);
  int64_t lanes_seen = 0;
  double seconds = 0;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
#pragma omp barrier
    std::chrono::steady_clock::time_point t0;
#pragma omp master
    t0 = std::chrono::steady_clock::now();
    const int64_t l = fma_chains(iterations, &sinks[static_cast<size_t>(t) * 16]);
#pragma omp barrier
#pragma omp master
    {
      seconds = seconds_since(t0);
      lanes_seen = l;
    }
  }
  lanes = lanes_seen;
  const double flops = 2.0 * static_cast<double>(lanes * kFmaChains) * static_cast<double>(iterations) * threads;
  return flops / seconds / 1e12;
}

// Best of three trials of about `seconds` each (calibrated on one short run).
double peak_tflops(int threads, double seconds, int64_t& lanes) {
  int64_t iterations = 1 << 20;
  const auto t0 = std::chrono::steady_clock::now();
  measure(threads, iterations, lanes);  // also wakes the threads and the vector units
  const double calib = std::max(seconds_since(t0), 1e-4);
  iterations = std::max<int64_t>(iterations, static_cast<int64_t>(static_cast<double>(iterations) * seconds / calib));
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) best = std::max(best, measure(threads, iterations, lanes));
  return best;
}

}  // namespace

int run_peak(const PeakOptions& o) {
  const int threads = apply_threads(o.threads);
  int64_t lanes = 0;
  const double single = peak_tflops(1, o.seconds, lanes);
  const double all = threads > 1 ? peak_tflops(threads, o.seconds, lanes) : single;
  const CpuInfo cpu = cpu_info();
  if (o.json) {
    nlohmann::ordered_json j;
    j["device"] = cpu.model;
    j["machine"] = cpu.slug;
    j["simd"] = fma_target_name();
    j["f32_lanes"] = lanes;
    j["threads"] = threads;
    j["peak_tflops"] = all;
    j["peak_tflops_one_thread"] = single;
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("fp32 FMA peak on {} ({}, {} f32 lanes, {} chains):\n", cpu.model, fma_target_name(), lanes, kFmaChains);
  fmt::print("  1 thread : {:.4f} TFLOP/s\n", single);
  fmt::print("  {} threads: {:.4f} TFLOP/s\n", threads, all);
  return 0;
}

}  // namespace omniattn::cli
