// Backend::cuda_sm80: the portable CUDA path (mma.sync + cp.async + ldmatrix), sm_80 and newer.
// Forward (cuda/flash) and backward (cuda/bwd).
#include <cuda_runtime_api.h>

#include <mutex>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/validate.hpp"
#include "cuda/bwd/bwd_arguments.hpp"
#include "cuda/bwd/bwd_config.hpp"
#include "cuda/bwd/bwd_enqueue.hpp"
#include "cuda/bwd/bwd_launch.hpp"
#include "cuda/bwd/bwd_workspace.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"
#include "cuda/common/device_scratch.hpp"
#include "cuda/flash/fwd_arguments.hpp"
#include "cuda/flash/fwd_config.hpp"
#include "cuda/flash/fwd_launch.hpp"

namespace omniattn::detail {
namespace {

// Validation copies cu_seqlens / seqused_k of CUDA tensors to the host through this hook.
// The copy is ordered after the caller's stream, which may have written them.
void copy_device_to_host(void* host, const void* device, int64_t bytes, int device_index, void* stream) {
  cuda::DeviceGuard guard(device_index);
  const auto s = static_cast<cudaStream_t>(stream);
  cuda::check(cudaMemcpyAsync(host, device, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, s),
              "cudaMemcpyAsync (device to host)");
  cuda::check(cudaStreamSynchronize(s), "cudaStreamSynchronize (device to host)");
}

// Installed at load time too: this object file is linked whenever dispatch.cpp references
// cuda_sm80_backend(), and validation (which needs the hook) runs before the backend list is built.
const bool g_hook_installed = (g_device_to_host = &copy_device_to_host, true);

bool device_is_sm80_or_newer(int device) { return cuda::device_major(device) >= 8; }
int max_smem_per_block(int device) { return cuda::device_max_smem_optin(device); }

std::string supported_head_dims() {
  std::string s;
  for (const cuda::FwdTuning& t : cuda::kFwdTuningTable)
    s += (s.empty() ? "" : ", ") + std::string("(") + std::to_string(t.d) + ", " + std::to_string(t.dv) + ")";
  return s;
}

std::string supported_bwd_head_dims() {
  std::string s;
  for (const cuda::BwdTuning& t : cuda::kBwdTuningTable)
    s += (s.empty() ? "" : ", ") + std::string("(") + std::to_string(t.d) + ", " + std::to_string(t.dv) + ")";
  return s;
}

class CudaSm80Backend final : public BackendImpl {
 public:
  CudaSm80Backend() { g_device_to_host = &copy_device_to_host; }

  Backend id() const override { return Backend::cuda_sm80; }

  bool available() const override {
    for (int major : cuda::device_majors())
      if (major >= 8) return true;
    return false;
  }

  std::string summary() const override {
    return "CUDA sm_80+ FlashAttention-2-style forward (mma.sync, cp.async, ldmatrix): bf16/f16, (D, Dv) in {" +
           supported_head_dims() +
           "}; causal, sliding window, sinks, varlen, seqused_k, GQA/MQA, softcap, ALiBi, sink logits, LSE; "
           "strided 16-byte aligned rows; backward (FlashAttention-2-style, (D, Dv) in {" +
           supported_bwd_head_dims() + "}, same features, optional deterministic mode)";
  }

  std::optional<std::string> can_run(const ForwardProblem& p) const override {
    if (!p.device.is_cuda()) return std::string("runs on CUDA tensors only");
    if (!device_is_sm80_or_newer(p.device.index))
      return "needs a CUDA device of compute capability 8.0 or newer (" + to_string(p.device) + " is not)";
    if (p.dtype != DType::bf16 && p.dtype != DType::f16)
      return "supports bf16 and f16 inputs only (given " + to_string(p.dtype) + ")";
    const cuda::FwdTuning t = cuda::fwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv));
    if (t.d == 0)
      return "supports head dims (D, Dv) in {" + supported_head_dims() + "} (given (" + std::to_string(p.d) + ", " +
             std::to_string(p.dv) + "))";
    if (std::string why = cuda::fwd_layout_refusal(p, t); !why.empty()) return why;
    return std::nullopt;
  }

  std::optional<std::string> can_run(const BackwardProblem& p) const override {
    if (!p.device.is_cuda()) return std::string("runs on CUDA tensors only");
    if (!device_is_sm80_or_newer(p.device.index))
      return "needs a CUDA device of compute capability 8.0 or newer (" + to_string(p.device) + " is not)";
    if (p.dtype != DType::bf16 && p.dtype != DType::f16)
      return "supports bf16 and f16 inputs only (given " + to_string(p.dtype) + ")";
    const cuda::BwdTuning t = cuda::bwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv));
    if (t.d == 0)
      return "backward supports head dims (D, Dv) in {" + supported_bwd_head_dims() + "} (given (" +
             std::to_string(p.d) + ", " + std::to_string(p.dv) + "))";
    if (t.smem_bytes() > max_smem_per_block(p.device.index))
      return "backward at (D, Dv) = (" + std::to_string(t.d) + ", " + std::to_string(t.dv) + ") needs " +
             std::to_string(t.smem_bytes()) + " bytes of shared memory per CTA; " + to_string(p.device) +
             " allows " + std::to_string(max_smem_per_block(p.device.index));
    if (std::string why = cuda::bwd_layout_refusal(p, t); !why.empty()) return why;
    return std::nullopt;
  }

  void forward(const ForwardProblem& p) const override {
    if (auto why = can_run(p)) throw Error("options.backend", "a call that cuda_sm80 supports", *why);
    cuda::DeviceGuard guard(p.device.index);
    const cuda::FwdTuning t = cuda::fwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv));
    cuda::FwdLaunch launch = cuda::make_fwd_launch(p, t, cuda::gqa_packing());
    if (launch.empty()) return;           // no query rows: nothing to write
    const auto stream = static_cast<cudaStream_t>(p.stream);
    const int d = static_cast<int>(p.d), dv = static_cast<int>(p.dv);
    if (launch.seqs.empty()) {
      cuda::run_fwd_sm80(p.dtype, d, dv, launch.params, stream);
      return;
    }
    cuda::DeviceScratch& scratch = cuda::DeviceScratch::of_device(p.device.index);
    const auto lock = scratch.lock();  // held until the kernel that reads the metadata is enqueued
    launch.params.seqs = static_cast<const cuda::SeqInfo*>(
        scratch.upload(launch.seqs.data(), launch.seqs.size() * sizeof(cuda::SeqInfo), stream));
    cuda::run_fwd_sm80(p.dtype, d, dv, launch.params, stream);
  }

  void backward(const BackwardProblem& p) const override {
    if (auto why = can_run(p)) throw Error("options.backend", "a call that cuda_sm80 supports", *why);
    cuda::enqueue_bwd(p, cuda::bwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv)),
                      cuda::BwdMainKernel{&cuda::run_bwd_sm80});
  }
};

}  // namespace

const BackendImpl& cuda_sm80_backend() {
  (void)g_hook_installed;
  static const CudaSm80Backend instance;
  return instance;
}

}  // namespace omniattn::detail
