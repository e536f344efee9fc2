#pragma once
// One backward call of the cuda_sm80 backend (or of its kernels under the host emulation) checked against the
// float64 reference backward, with the tolerance of the same-precision naive backward (tests/support/test_util.hpp).
// Inputs reuse the forward's cases (sm80_case.hpp); O and LSE come from the float64 reference forward (O rounded
// to the input dtype), dO is fresh random normals. Gradient outputs are NaN-poisoned before every run.
//
// Block-sparse cases pass a host BlockMask: the reference forward, the naive run and the kernel use it as
// options.block_mask (the GPU run uploads it with DeviceBlockMask), and the float64 oracle runs with the
// equivalent dense element mask (every block partial, the mask's pair rule as a host functor), so the
// kernel's walk of the lists is checked against the rule itself.
#include "gpu/sm80_case.hpp"
#include "omniattn/mask.hpp"

namespace omniattn::testing {

struct BwdInputs {
  Sm80Inputs fwd;              // Q, K, V, option tensors (host)
  HostTensor out, lse, dout;   // O (input dtype), LSE (f32), dO (input dtype)
  HostTensor out64;            // O of the float64 forward before rounding
  const BlockMask* mask = nullptr;  // options.block_mask (host), or none
};

struct BwdResult {
  HostTensor dq, dk, dv, dsink;  // dsink: f32 [Hq] (only with sink logits)
};

BwdInputs make_bwd_inputs(const Sm80Case& c, const BlockMask* mask = nullptr);
/// NaN-filled host gradients shaped like Q, K, V (and dsink).
BwdResult bwd_outputs_like(const Sm80Case& c, const BwdInputs& in);
/// Options of the host reference runs (and of the emulated launch).
AttentionOptions bwd_host_options(const Sm80Case& c, const BwdInputs& in, bool deterministic);
/// Checks gradients against the float64 reference with the naive same-precision tolerance (gtest failures).
void check_bwd_against_reference(const Sm80Case& c, const BwdInputs& in, const BwdResult& res);
/// Runs attention_backward on the GPU (cuda_sm80) on `in`; checks against the reference when `check`.
BwdResult run_sm80_backward(const Sm80Case& c, const BwdInputs& in, bool deterministic = false, bool check = true);
/// Fresh inputs, one checked GPU run.
inline BwdResult check_sm80_backward(const Sm80Case& c, bool deterministic = false, const BlockMask* mask = nullptr) {
  return run_sm80_backward(c, make_bwd_inputs(c, mask), deterministic);
}
/// Bitwise equality of every gradient of two runs.
bool same_gradients(const BwdResult& a, const BwdResult& b, bool with_dsink);

}  // namespace omniattn::testing
