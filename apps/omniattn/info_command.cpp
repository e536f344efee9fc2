// `omniattn info`: the build, the devices, the SIMD target in use, and what each backend runs
// (backends say why they refuse a call: the probes below ask each one about a few typical calls).
#include <fmt/format.h>
#include <hwy/targets.h>
#include <omp.h>

#include "commands.hpp"
#include "device_array.hpp"
#include "machine.hpp"

#ifndef OMNIATTN_CLI_CUDA_ARCHS
#define OMNIATTN_CLI_CUDA_ARCHS ""
#endif

namespace omniattn::cli {
namespace {

// A small attention call to ask backends about ("would you run this?").
struct Probe {
  std::string label;
  DType dtype = DType::f32;
  int64_t d = 128, dv = 128;
  bool causal = false, varlen = false, extras = false;  // extras: softcap + ALiBi + sink logits + window
};

const std::vector<Probe>& probes() {
  static const std::vector<Probe> list = {
      {"f32 D128", DType::f32, 128, 128},
      {"bf16 D128 causal", DType::bf16, 128, 128, true},
      {"f16 D64", DType::f16, 64, 64},
      {"f32 D256", DType::f32, 256, 256},
      {"f32 D192/128", DType::f32, 192, 128},
      {"f32 D80", DType::f32, 80, 80},
      {"f64 D64", DType::f64, 64, 64},
      {"f32 varlen", DType::f32, 128, 128, false, true},
      {"bf16 softcap+alibi+sinks", DType::bf16, 128, 128, true, false, true},
  };
  return list;
}

// For each probe: whether `backend` would run it on `device` ("yes") or why not.
std::vector<std::pair<std::string, std::string>> probe_backend(Backend backend, Device device) {
  std::vector<std::pair<std::string, std::string>> answers;
  const int64_t seqlen = 16, heads = 2;
  for (const Probe& p : probes()) {
    std::vector<int64_t> qs = {1, seqlen, heads, p.d}, ks = {1, seqlen, heads, p.d}, vs = {1, seqlen, heads, p.dv},
                         os = {1, seqlen, heads, p.dv}, ls = {1, heads, seqlen};
    if (p.varlen) {
      qs = {seqlen, heads, p.d};
      ks = {seqlen, heads, p.d};
      vs = {seqlen, heads, p.dv};
      os = {seqlen, heads, p.dv};
      ls = {heads, seqlen};
    }
    const DeviceArray q(HostArray(p.dtype, qs), device), k(HostArray(p.dtype, ks), device),
        v(HostArray(p.dtype, vs), device), out(HostArray(p.dtype, os), device), lse(HostArray(DType::f32, ls), device);
    HostArray cu(DType::i32, {3}), slopes(DType::f32, {heads}), sinks(DType::f32, {heads});
    cu.set(1, 5);
    cu.set(2, seqlen);
    const DeviceArray cu_dev(cu, device), slopes_dev(slopes, device), sinks_dev(sinks, device);
    AttentionOptions o;
    o.backend = backend;
    o.causal = p.causal;
    if (p.varlen) o.cu_seqlens_q = o.cu_seqlens_k = cu_dev.view();
    if (p.extras) {
      o.softcap = 30;
      o.alibi_slopes = slopes_dev.view();
      o.sink_logits = sinks_dev.view();
      o.window_left = 8;
      o.sinks = 2;
    }
    std::string answer = "?";
    try {
      for (const auto& [b, why] : explain_forward(q.view(), k.view(), v.view(), {out.view(), lse.view()}, o))
        if (b == backend) answer = why ? *why : "yes";
    } catch (const Error& e) {
      answer = e.what();
    }
    answers.emplace_back(p.label, answer);
  }
  return answers;
}

}  // namespace

int run_info() {
  fmt::print("omniattn {}\n", kVersion);
  fmt::print("build: {}\n", build_info());
  const std::string archs = OMNIATTN_CLI_CUDA_ARCHS;
  fmt::print("CUDA archs compiled: {}\n", OMNIATTN_WITH_CUDA ? (archs.empty() ? "?" : archs) : "none (CPU-only build)");

  const CpuInfo cpu = cpu_info();
  fmt::print("\nCPU: {} ({} logical CPUs, OpenMP threads {}; results folder {})\n", cpu.model, cpu.logical_cpus,
             omp_get_max_threads(), cpu.slug);
  std::string simd;
  for (int64_t t : hwy::SupportedAndGeneratedTargets())
    simd += std::string(simd.empty() ? "" : " ") + hwy::TargetName(t);
  const auto targets = hwy::SupportedAndGeneratedTargets();
  fmt::print("SIMD: chosen {} (usable here: {})\n", targets.empty() ? "none" : hwy::TargetName(targets.front()),
             simd.empty() ? "none" : simd);

  const int gpus = cuda_device_count();
  if (!OMNIATTN_WITH_CUDA)
    fmt::print("CUDA devices: none (built without CUDA)\n");
  else if (gpus == 0)
    fmt::print("CUDA devices: none found\n");
  for (int i = 0; i < gpus; ++i) {
    const CudaDeviceInfo g = cuda_device_info(i);
    fmt::print("CUDA device {}: {} (sm_{}{}, {} SMs, {:.1f} GiB; results folder {})\n", i, g.name, g.major, g.minor,
               g.sm_count, g.memory_gib, gpu_slug(g.name));
  }

  fmt::print("\nbackends (in order of preference):\n");
  for (const BackendStatus& b : list_backends()) {
    fmt::print("  {:<10} {}  {}\n", b.name, b.available ? "available    " : "not available", b.summary);
    if (!b.available) continue;
    const bool cuda = b.backend == Backend::cuda_sm80 || b.backend == Backend::cuda_sm90;
    if (cuda && gpus == 0) continue;
    for (const auto& [label, answer] : probe_backend(b.backend, cuda ? Device::cuda(0) : Device::cpu()))
      fmt::print("      {:<26} {}\n", label, answer);
  }
  return 0;
}

}  // namespace omniattn::cli
