#include <cstring>
#include <string>

#include "cuda/bwd/bwd_arguments.hpp"
#include "cuda/bwd/bwd_enqueue.hpp"
#include "cuda/bwd/bwd_scheduler.cuh"
#include "cuda/bwd/bwd_workspace.hpp"
#include "cuda/common/cta_timeline_capture.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_scratch.hpp"
#include "omniattn/error.hpp"

namespace omniattn::detail::cuda {

void enqueue_bwd(const BackwardProblem& p, const BwdTuning& tuning, const BwdMainKernel& kernel) {
  DeviceGuard guard(p.device.index);
  BwdLaunch launch = make_bwd_launch(p, tuning);
  if (launch.empty()) return;  // no heads or sequences: nothing to write
  const auto stream = static_cast<cudaStream_t>(p.stream);
  const bool varlen = !launch.seqs.empty();
  BwdTmaMaps maps;
  if (kernel.make_maps) kernel.make_maps(p, varlen, maps);
  // Both locks are held until the kernels that read the metadata and the workspace are enqueued.
  DeviceScratch& scratch = DeviceScratch::of_device(p.device.index);
  BwdWorkspace& workspace = BwdWorkspace::of_device(p.device.index);
  const auto scratch_lock = scratch.lock();
  const auto workspace_lock = workspace.lock();
  if (varlen) {  // one blob: the per-sequence maps (64-byte aligned) first, then the sequence geometry
    const std::size_t map_bytes = maps.per_sequence.size() * sizeof(CUtensorMap);
    const std::size_t seq_bytes = launch.seqs.size() * sizeof(BwdSeqInfo);
    std::vector<CUtensorMap> blob(maps.per_sequence.size() +
                                  (seq_bytes + sizeof(CUtensorMap) - 1) / sizeof(CUtensorMap));
    std::memcpy(blob.data(), maps.per_sequence.data(), map_bytes);
    std::memcpy(reinterpret_cast<char*>(blob.data()) + map_bytes, launch.seqs.data(), seq_bytes);
    const auto* device_blob =
        static_cast<const char*>(scratch.upload(blob.data(), blob.size() * sizeof(CUtensorMap), stream));
    if (!maps.per_sequence.empty()) maps.device_per_sequence = reinterpret_cast<const CUtensorMap*>(device_blob);
    launch.params.seqs = reinterpret_cast<const BwdSeqInfo*>(device_blob + map_bytes);
  }
  launch.bind_workspace(workspace.acquire(launch.workspace_bytes, stream));
  // Debug: OMNIATTN_BWD_TIMELINE=<file> appends the main kernel's CTA records of every call (cta_timeline.hpp).
  const dim3 grid = BwdKvScheduler::grid(launch.params);
  CtaTimelineCapture timeline("OMNIATTN_BWD_TIMELINE", grid.x, grid.y, grid.z, stream);
  launch.params.timeline = timeline.records();
  if (!kernel.run(p.dtype, static_cast<int>(p.d), static_cast<int>(p.dv), launch.params, maps, stream))
    throw Error("head dims", "an instantiated backward kernel", "none for this (dtype, D, Dv)");
  timeline.append([&] {
    return std::string(launch.params.block_sparse ? "sparse" : "dense") + (p.deterministic ? "_det" : "") + "_d" +
           std::to_string(p.d);
  });
}

}  // namespace omniattn::detail::cuda
