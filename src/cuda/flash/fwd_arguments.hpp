#pragma once
// Arguments -> Params of the sm_80 forward: a validated ForwardProblem becomes kernel parameters plus the
// per-sequence metadata to upload (empty when every sequence has the same geometry).
// Plain C++ (no CUDA syntax): the GPU tests include it to force either GQA layout.
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "cuda/flash/fwd_config.hpp"
#include "cuda/flash/fwd_params.hpp"

namespace omniattn::detail::cuda {

/// How query heads sharing a KV head are laid out in tiles: `automatic` packs them into one tile when that
/// needs fewer CTAs (few query tokens: decode, short prompts), `never`/`always` force a layout (tests).
enum class GqaPacking { automatic, never, always };
/// Process-wide override, for tests and experiments (default automatic).
void set_gqa_packing(GqaPacking packing);
GqaPacking gqa_packing();

struct FwdLaunch {
  FwdParams params;
  std::vector<SeqInfo> seqs;  // per-sequence geometry to upload; empty: uniform (params.uniform_*)
  bool empty() const { return params.batch == 0 || params.m_blocks == 0; }
};

FwdLaunch make_fwd_launch(const ForwardProblem& p, const FwdTuning& tuning, GqaPacking packing);

/// Why the forward kernel of `tuning`'s tile geometry cannot take `p` (layout and size limits, block-mask
/// geometry against the tiles), or an empty string. `packing`: the GqaPacking make_fwd_launch will get.
std::string fwd_layout_refusal(const ForwardProblem& p, const FwdTuning& tuning, GqaPacking packing = gqa_packing());

}  // namespace omniattn::detail::cuda
