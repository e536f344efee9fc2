// attention_decode and kv_cache_append: validation, then the one runtime choice of implementation.
#include "core/validate.hpp"
#include "decode/decode_cpu.hpp"
#include "decode/decode_cuda.hpp"
#include "decode/decode_problem.hpp"
#include "decode/decode_reference.hpp"
#include "omniattn/decode.hpp"

namespace omniattn {
namespace {

using detail::DecodeProblem;

// Backend::automatic -> the backend for the cache's device and dtype.
Backend resolve(const DecodeProblem& p) {
  if (p.requested != Backend::automatic) return p.requested;
  if (p.cache.device.is_cuda()) return Backend::cuda_sm80;
  return p.cache.dtype == DType::f64 ? Backend::reference : Backend::cpu;
}

std::optional<std::string> refusal(Backend backend, const DecodeProblem& p) {
  switch (backend) {
    case Backend::reference:
      if (!p.cache.device.is_cpu()) return std::string("the reference runs on CPU caches only");
      return std::nullopt;
    case Backend::cpu: return detail::cpu_decode::refusal(p);
    case Backend::cuda_sm80:
#if OMNIATTN_WITH_CUDA
      return detail::decode_cuda::refusal(p);
#else
      return std::string("this build has no CUDA");
#endif
    default: return "decode has no " + to_string(backend) + " backend";
  }
}

}  // namespace

void attention_decode(const TensorView& q, const KVCache& cache, const DecodeOutputs& outputs,
                      const AttentionOptions& options, const DecodeConfig& config) {
  const DecodeProblem p = detail::make_decode_problem(q, cache, outputs, options, config);
  const Backend backend = resolve(p);
  if (auto why = refusal(backend, p))
    throw Error("options.backend", "a decode call that " + to_string(backend) + " supports", *why);
  switch (backend) {
    case Backend::reference: detail::reference::decode(p); break;
    case Backend::cpu: detail::cpu_decode::run(p); break;
#if OMNIATTN_WITH_CUDA
    case Backend::cuda_sm80: detail::decode_cuda::run(p); break;
#endif
    default: break;
  }
}

void kv_cache_append(const KVCache& cache, const TensorView& k_new, const TensorView& v_new,
                     const AppendOptions& options) {
  const detail::AppendProblem p = detail::make_append_problem(cache, k_new, v_new, options);
  if (p.cache.device.is_cpu()) {
    detail::cpu_decode::append(p);
    return;
  }
#if OMNIATTN_WITH_CUDA
  if (auto why = detail::decode_cuda::append_refusal(p))
    throw Error("cache", "a cache the CUDA append supports", *why);
  detail::decode_cuda::append(p);
#else
  throw Error("cache.k", "a CPU tensor (this build has no CUDA)", to_string(p.cache.device));
#endif
}

}  // namespace omniattn
