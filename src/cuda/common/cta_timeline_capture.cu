#include "cuda/common/cta_timeline_capture.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda/common/cuda_check.hpp"

namespace omniattn::detail::cuda {

CtaTimelineCapture::CtaTimelineCapture(const char* env_name, unsigned x, unsigned y, unsigned z, cudaStream_t stream)
    : grid_{x, y, z}, stream_(stream) {
  const char* path = std::getenv(env_name);
  if (path == nullptr || *path == '\0') return;
  path_ = path;
  const std::size_t bytes = std::size_t{x} * y * z * sizeof(CtaTimelineRecord);
  check(cudaMalloc(&records_, bytes), "cudaMalloc (CTA timeline)");
  check(cudaMemsetAsync(records_, 0, bytes, stream_), "cudaMemsetAsync (CTA timeline)");
}

CtaTimelineCapture::~CtaTimelineCapture() {
  if (records_ != nullptr) cudaFree(records_);  // (no throw from a destructor)
}

void CtaTimelineCapture::write(const std::string& label) {
  const std::size_t count = std::size_t{grid_[0]} * grid_[1] * grid_[2];
  std::vector<CtaTimelineRecord> host(count);
  check(cudaMemcpyAsync(host.data(), records_, count * sizeof(CtaTimelineRecord), cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync (CTA timeline)");
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (CTA timeline)");
  std::FILE* f = std::fopen(path_.c_str(), "a");
  if (f == nullptr) return;  // a debug aid: an unwritable path loses the records, not the call
  std::fprintf(f, "launch %s %u %u %u\n", label.c_str(), grid_[0], grid_[1], grid_[2]);
  for (std::size_t i = 0; i < count; ++i) {
    const CtaTimelineRecord& r = host[i];
    if (r.end_ns == 0) continue;  // a CTA that had no work to record
    std::fprintf(f, "%zu %llu %llu %u %d %d %d\n", i, static_cast<unsigned long long>(r.start_ns),
                 static_cast<unsigned long long>(r.end_ns), r.sm, r.tile, r.head, r.steps);
  }
  std::fclose(f);
}

}  // namespace omniattn::detail::cuda
