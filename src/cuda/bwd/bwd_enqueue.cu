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
  BwdLaunch launch = make_bwd_launch(p, tuning, kernel.dq_partials ? kernel.dq_partials(p) : 1);
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
  // One upload: the per-sequence maps (64-byte aligned) first, then the sequence geometry, the split plan's units
  // and split tiles (bwd_split_plan.hpp), each at a 64-byte boundary.
  const BwdSplitPlan& split = launch.split;
  const std::size_t map_bytes = maps.per_sequence.size() * sizeof(CUtensorMap);
  auto aligned = [](std::size_t bytes) { return (bytes + 63) / 64 * 64; };
  const std::size_t seq_at = aligned(map_bytes), seq_bytes = launch.seqs.size() * sizeof(BwdSeqInfo);
  const std::size_t unit_at = aligned(seq_at + seq_bytes), unit_bytes = split.units.size() * sizeof(BwdKvUnit);
  const std::size_t tile_at = aligned(unit_at + unit_bytes);
  const std::size_t blob_bytes = tile_at + split.split_tiles.size() * sizeof(BwdSplitTile);
  if (blob_bytes > 0) {
    std::vector<CUtensorMap> blob((blob_bytes + sizeof(CUtensorMap) - 1) / sizeof(CUtensorMap));  // 64-byte aligned
    auto* bytes = reinterpret_cast<char*>(blob.data());
    if (map_bytes > 0) std::memcpy(bytes, maps.per_sequence.data(), map_bytes);
    if (seq_bytes > 0) std::memcpy(bytes + seq_at, launch.seqs.data(), seq_bytes);
    if (unit_bytes > 0) std::memcpy(bytes + unit_at, split.units.data(), unit_bytes);
    if (!split.split_tiles.empty())
      std::memcpy(bytes + tile_at, split.split_tiles.data(), split.split_tiles.size() * sizeof(BwdSplitTile));
    const auto* device_blob = static_cast<const char*>(scratch.upload(blob.data(), blob.size() * sizeof(CUtensorMap), stream));
    if (!maps.per_sequence.empty()) maps.device_per_sequence = reinterpret_cast<const CUtensorMap*>(device_blob);
    if (varlen) launch.params.seqs = reinterpret_cast<const BwdSeqInfo*>(device_blob + seq_at);
    if (unit_bytes > 0) {
      launch.params.units = reinterpret_cast<const BwdKvUnit*>(device_blob + unit_at);
      launch.params.split_tiles = reinterpret_cast<const BwdSplitTile*>(device_blob + tile_at);
    }
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
