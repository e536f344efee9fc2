#include "cuda/bwd/bwd_enqueue.hpp"

#include "omniattn/error.hpp"

#include "cuda/bwd/bwd_arguments.hpp"
#include "cuda/bwd/bwd_workspace.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_scratch.hpp"

namespace omniattn::detail::cuda {

void enqueue_bwd(const BackwardProblem& p, const BwdTuning& tuning, BwdRunner run) {
  DeviceGuard guard(p.device.index);
  BwdLaunch launch = make_bwd_launch(p, tuning);
  if (launch.empty()) return;  // no heads or sequences: nothing to write
  const auto stream = static_cast<cudaStream_t>(p.stream);
  // Both locks are held until the kernels that read the metadata and the workspace are enqueued.
  DeviceScratch& scratch = DeviceScratch::of_device(p.device.index);
  BwdWorkspace& workspace = BwdWorkspace::of_device(p.device.index);
  const auto scratch_lock = scratch.lock();
  const auto workspace_lock = workspace.lock();
  if (!launch.seqs.empty())
    launch.params.seqs = static_cast<const BwdSeqInfo*>(
        scratch.upload(launch.seqs.data(), launch.seqs.size() * sizeof(BwdSeqInfo), stream));
  launch.bind_workspace(workspace.acquire(launch.workspace_bytes, stream));
  if (!run(p.dtype, static_cast<int>(p.d), static_cast<int>(p.dv), launch.params, stream))
    throw Error("head dims", "an instantiated backward kernel", "none for this (dtype, D, Dv)");
}

}  // namespace omniattn::detail::cuda
