#pragma once
// Host side of cta_timeline.hpp: a device buffer of CTA records for one launch, appended to the file that an
// environment variable names (read once per process). Debug only: it synchronizes the stream after the launch.
// File format (bench/gpu/cta_timeline.py reads it), per launch:
//   launch <label> <grid x> <grid y> <grid z>
//   <slot> <start ns> <end ns> <sm> <tile> <head> <steps>      one line per CTA that recorded
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "cuda/common/cta_timeline.hpp"

namespace omniattn::detail::cuda {

class CtaTimelineCapture {
 public:
  /// Active when `env_name` names a file: zeroed records for a grid of `x * y * z` CTAs on `stream`.
  CtaTimelineCapture(const char* env_name, unsigned x, unsigned y, unsigned z, cudaStream_t stream);
  ~CtaTimelineCapture();
  CtaTimelineCapture(const CtaTimelineCapture&) = delete;
  CtaTimelineCapture& operator=(const CtaTimelineCapture&) = delete;

  /// The records to pass to the kernel; null when inactive.
  CtaTimelineRecord* records() const { return records_; }
  /// After the launch, when active: waits for the stream and appends the records under `label()` (a callable, so
  /// that an inactive capture, every call but a debug run's, builds no string).
  template <class Label>
  void append(Label&& label) {
    if (records_ != nullptr) write(label());
  }

 private:
  void write(const std::string& label);
  std::string path_;
  unsigned grid_[3] = {0, 0, 0};
  cudaStream_t stream_ = nullptr;
  CtaTimelineRecord* records_ = nullptr;
};

}  // namespace omniattn::detail::cuda
