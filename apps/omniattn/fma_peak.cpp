// The FMA loop that measures the machine's fp32 peak: kChains independent accumulator vectors, each
// updated by one fused multiply-add per iteration, compiled for every SIMD target Highway builds and
// dispatched to the best one the CPU has. Enough chains hide the FMA latency on every pipe
// (latency 4 x 2 pipes needs 8 in flight on Zen 4/5 and recent Intel cores); 12 fit in 16 registers.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "fma_peak.cpp"
#include "fma_peak.hpp"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace omniattn::cli::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Runs `iterations` rounds; returns the float lanes per vector and writes a sum so nothing is elided.
int64_t FmaChains(int64_t iterations, float* sink) {
  const hn::ScalableTag<float> d;
  // x <- x * m + c converges to c / (1 - m) = 1: no overflow, no denormals, however long it runs.
  const auto m = hn::Set(d, 0.999f), c = hn::Set(d, 0.001f);
  auto a0 = hn::Set(d, 0.0f), a1 = hn::Set(d, 0.1f), a2 = hn::Set(d, 0.2f), a3 = hn::Set(d, 0.3f);
  auto a4 = hn::Set(d, 0.4f), a5 = hn::Set(d, 0.5f), a6 = hn::Set(d, 0.6f), a7 = hn::Set(d, 0.7f);
  auto a8 = hn::Set(d, 0.8f), a9 = hn::Set(d, 0.9f), a10 = hn::Set(d, 1.1f), a11 = hn::Set(d, 1.2f);
  for (int64_t i = 0; i < iterations; ++i) {
    a0 = hn::MulAdd(a0, m, c);
    a1 = hn::MulAdd(a1, m, c);
    a2 = hn::MulAdd(a2, m, c);
    a3 = hn::MulAdd(a3, m, c);
    a4 = hn::MulAdd(a4, m, c);
    a5 = hn::MulAdd(a5, m, c);
    a6 = hn::MulAdd(a6, m, c);
    a7 = hn::MulAdd(a7, m, c);
    a8 = hn::MulAdd(a8, m, c);
    a9 = hn::MulAdd(a9, m, c);
    a10 = hn::MulAdd(a10, m, c);
    a11 = hn::MulAdd(a11, m, c);
  }
  const auto sum =
      hn::Add(hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7))),
              hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  *sink = hn::GetLane(hn::SumOfLanes(d, sum));
  return static_cast<int64_t>(hn::Lanes(d));
}

}  // namespace omniattn::cli::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace omniattn::cli {
HWY_EXPORT(FmaChains);

int64_t fma_chains(int64_t iterations, float* sink) { return HWY_DYNAMIC_DISPATCH(FmaChains)(iterations, sink); }

const char* fma_target_name() {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  return targets.empty() ? "none" : hwy::TargetName(targets.front());
}
}  // namespace omniattn::cli
#endif
