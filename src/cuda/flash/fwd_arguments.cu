#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>

#include "cuda/flash/fwd_arguments.hpp"
#include "omniattn/error.hpp"

namespace omniattn::detail::cuda {
namespace {

std::atomic<GqaPacking> g_packing{GqaPacking::automatic};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool choose_packing(const ForwardProblem& p, const FwdTuning& t, GqaPacking packing) {
  const int64_t group = p.group();
  if (group == 1 || packing == GqaPacking::never) return false;
  if (packing == GqaPacking::always) return true;
  // Packed tiles interleave the group's heads: fewer CTAs when the query tiles are mostly empty.
  const int64_t unpacked = p.hq * ceil_div(p.max_q_len, t.block_m);
  const int64_t packed = p.hkv * ceil_div(p.max_q_len * group, t.block_m);
  return packed < unpacked;
}

// GQA packing of a block-sparse call: the tile's packed rows [m * block_m, (m + 1) * block_m) must lie inside
// one mask query block, i.e. block_m divides block_q * pack; packed heads must share their mask (one mask for
// all heads, or one per KV head). The packing the dense rule prefers when it fits, else the one that fits;
// 0: neither fits (refused).
int64_t sparse_pack(const ForwardProblem& p, const FwdTuning& t, GqaPacking packing) {
  const SparseMask& m = *p.sparse;
  const int64_t group = p.group();
  auto fits = [&](int64_t pack) { return m.block_q * pack % t.block_m == 0; };
  const bool can_pack = group > 1 && packing != GqaPacking::never && m.heads != p.hq && fits(group);
  if (can_pack && (choose_packing(p, t, packing) || !fits(1))) return group;
  return fits(1) ? 1 : 0;
}

std::string sparse_refusal(const ForwardProblem& p, const FwdTuning& t, GqaPacking packing) {
  const SparseMask& m = *p.sparse;
  if (m.host_element_mask != nullptr)
    return "block-sparse masks with options.block_mask.host_element_mask (a host functor) run on CPU backends "
           "only";
  if (sparse_pack(p, t, packing) == 0)
    return "block-sparse masks need options.block_mask.block_q to be a multiple of this kernel's query tile of " +
           std::to_string(t.block_m) + " rows at D = " + std::to_string(t.d) + " (given block_q = " +
           std::to_string(m.block_q) + ")";
  if (m.block_k % t.block_n != 0)
    return "block-sparse masks need options.block_mask.block_k to be a multiple of this kernel's KV tile of " +
           std::to_string(t.block_n) + " keys at D = " + std::to_string(t.d) + " (given block_k = " +
           std::to_string(m.block_k) + ")";
  return {};
}

// Row pointers and strides must keep every 16-byte chunk of a row aligned (cp.async, vector stores).
bool rows_aligned(const Operand& o) {
  return reinterpret_cast<uintptr_t>(o.data) % 16 == 0 && o.batch % 8 == 0 && o.token % 8 == 0 && o.head % 8 == 0;
}

}  // namespace

void set_gqa_packing(GqaPacking packing) { g_packing.store(packing); }
GqaPacking gqa_packing() { return g_packing.load(); }

std::string fwd_layout_refusal(const ForwardProblem& p, const FwdTuning& t, GqaPacking packing) {
  for (const auto& [o, name] : {std::pair{&p.q, "q"}, {&p.k, "k"}, {&p.v, "v"}, {&p.out, "out"}})
    if (!rows_aligned(*o))
      return std::string("needs 16-byte aligned rows: ") + name +
             " must start at a 16-byte boundary and have batch/token/head strides that are multiples of 8 elements";
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  if (p.max_q_len * p.group() > kIntMax - t.block_m || p.max_k_len > kIntMax - t.block_n)
    return "supports sequences of fewer than 2^31 query rows (times the GQA group) and keys";
  if (p.batch > 65535 || p.hq > 65535) return "supports at most 65535 sequences and 65535 query heads per call";
  if (p.sparse) return sparse_refusal(p, t, packing);
  return {};
}

FwdLaunch make_fwd_launch(const ForwardProblem& p, const FwdTuning& t, GqaPacking packing) {
  FwdLaunch l;
  FwdParams& f = l.params;
  f.q = p.q.data;
  f.k = p.k.data;
  f.v = p.v.data;
  f.out = p.out.data;
  f.q_batch = p.q.batch, f.q_token = p.q.token, f.q_head = p.q.head;
  f.k_batch = p.k.batch, f.k_token = p.k.token, f.k_head = p.k.head;
  f.v_batch = p.v.batch, f.v_token = p.v.token, f.v_head = p.v.head;
  f.o_batch = p.out.batch, f.o_token = p.out.token, f.o_head = p.out.head;
  if (p.lse) {
    f.lse = p.lse->data;
    f.lse_batch = p.lse->batch, f.lse_head = p.lse->head, f.lse_token = p.lse->token;
  }

  f.batch = static_cast<int32_t>(p.batch);
  f.hq = static_cast<int32_t>(p.hq);
  f.group = static_cast<int32_t>(p.group());
  if (p.sparse) {
    if (std::string why = sparse_refusal(p, t, packing); !why.empty())
      throw Error("options.block_mask", "a mask the CUDA forward supports", why);
    f.pack = static_cast<int32_t>(sparse_pack(p, t, packing));
    f.sparse = make_sparse_params(*p.sparse);
  } else {
    f.pack = choose_packing(p, t, packing) ? f.group : 1;
  }
  f.head_blocks = f.hq / f.pack;
  f.m_blocks = static_cast<int32_t>(ceil_div(p.max_q_len * f.pack, t.block_m));

  // One geometry for every sequence (plain batches, no seqused_k) needs no upload.
  bool uniform = true;
  for (int64_t b = 0; b < p.batch; ++b)
    uniform = uniform && p.q_begin[b] == 0 && p.k_begin[b] == 0 && p.q_len[b] == p.q_len[0] && p.k_len[b] == p.k_len[0];
  if (uniform && p.batch > 0) {
    f.uniform_q_len = static_cast<int32_t>(p.q_len[0]);
    f.uniform_k_len = static_cast<int32_t>(p.k_len[0]);
  } else {
    l.seqs.resize(static_cast<size_t>(p.batch));
    for (int64_t b = 0; b < p.batch; ++b)
      l.seqs[b] = {p.q_begin[b], p.k_begin[b], static_cast<int32_t>(p.q_len[b]), static_cast<int32_t>(p.k_len[b])};
  }

  f.window_left = p.window_left;
  f.window_right = p.window_right;
  f.sinks = p.sinks;
  f.scale = static_cast<float>(p.scale);
  f.softcap = static_cast<float>(p.softcap);
  f.alibi = p.alibi;
  f.alibi_batch_stride = p.alibi_batch_stride;
  f.sink_logits = p.sink_logits;
  // Plain attention keeps raw dots and folds the scale into the exponent (exact only for scale > 0).
  f.general_logits = p.softcap > 0 || p.alibi != nullptr || p.scale < 0;
  constexpr double kLog2e = 1.4426950408889634;
  f.mult_log2 = static_cast<float>(f.general_logits ? kLog2e : p.scale * kLog2e);
  return l;
}

}  // namespace omniattn::detail::cuda
