#pragma once
// One forward call of the cuda_sm80 backend checked against the float64 reference, with the tolerance of
// the same-precision naive implementation (tests/support/test_util.hpp). Inputs are fresh random normals;
// device outputs are NaN-poisoned before every run, so an unwritten element fails.
#include <optional>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "cuda/flash/fwd_arguments.hpp"
#include "gpu/gpu_support.hpp"
#include "omniattn/mask.hpp"
#include "reference/reference.hpp"

namespace omniattn::testing {

struct Sm80Case {
  Backend backend = Backend::cuda_sm80;  // the CUDA backend under test (cuda_sm80 or cuda_sm90)
  DType dtype = DType::bf16;
  int64_t batch = 2, sq = 64, sk = 64, hq = 2, hkv = 2, d = 64, dv = 0;  // dv = 0: same as d
  bool causal = false;
  int64_t window_left = -1, window_right = -1, sinks = 0;
  double softcap = 0;
  std::optional<double> scale;
  enum class Alibi { none, per_head, per_batch } alibi = Alibi::none;
  bool sink_logits = false;
  std::vector<int> q_lens, k_lens;  // varlen (cu_seqlens) when non-empty
  std::vector<int> seqused_k;       // keys used per sequence; the unused ones are NaN
  bool strided = false;             // Q/K/V/O stored head-major with padded rows: [B, H, S, D + 8]
  bool with_lse = true;
  double input_stddev = 1.0;
  detail::cuda::GqaPacking packing = detail::cuda::GqaPacking::automatic;
  // Keys [poison_keys_begin, poison_keys_end) of every sequence are NaN: they must never be loaded.
  int64_t poison_keys_begin = 0, poison_keys_end = 0;
  // Block-sparse calls: options.block_mask (uploaded with DeviceBlockMask for CUDA runs; the reference reads
  // the host mask). Not owned; must outlive the run.
  const BlockMask* mask = nullptr;

  int64_t head_dim_v() const { return dv ? dv : d; }
  bool varlen() const { return !q_lens.empty(); }
  std::string describe() const;
};

struct Sm80Result {
  HostTensor out, lse;  // downloaded outputs of the backend
  double out_err = 0, out_bound = 0;
};

/// Random inputs for a case, kept so that the same inputs can run twice.
struct Sm80Inputs {
  HostTensor q, k, v, alibi, sink, cu_q, cu_k, used;
  AttentionOptions host_options;  // CPU tensors, for the reference
};

Sm80Inputs make_inputs(const Sm80Case& c);
/// Runs the backend on `in`; checks outputs against the reference when `check` (gtest failures).
Sm80Result run_sm80(const Sm80Case& c, const Sm80Inputs& in, bool check = true);
/// Checks downloaded outputs against the float64 reference with the naive same-precision tolerance.
void check_against_reference(const Sm80Case& c, const Sm80Inputs& in, Sm80Result& res);
/// Host tensors shaped like the outputs (O in the input dtype, LSE f32), NaN-filled.
HostTensor out_like(const Sm80Case& c, const Sm80Inputs& in);
HostTensor lse_like(const Sm80Case& c, const Sm80Inputs& in);
/// Fresh inputs, one checked run.
inline Sm80Result check_sm80(const Sm80Case& c) { return run_sm80(c, make_inputs(c)); }

}  // namespace omniattn::testing
