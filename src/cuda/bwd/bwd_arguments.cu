#include "cuda/bwd/bwd_arguments.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include "cuda/common/env.hpp"

namespace omniattn::detail::cuda {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Deterministic mode: KV tiles of a head launched together (BwdKvScheduler). A wave then holds ~132 / 8 heads, each
// with a dQ chain of 8 links; their Q / dO (8 tiles read each in step) still share L2.
constexpr int kDeterministicChunk = 8;
std::size_t align256(std::size_t x) { return (x + 255) / 256 * 256; }

// Row pointers and strides must keep every 16-byte chunk of a row aligned (cp.async, vector stores).
bool rows_aligned(const Operand& o) {
  return reinterpret_cast<uintptr_t>(o.data) % 16 == 0 && o.batch % 8 == 0 && o.token % 8 == 0 && o.head % 8 == 0;
}

// set_bwd_order_override's values (-1: the environment's or the default).
std::atomic<int> g_det_overlap{-1}, g_sparse_chunk{-1}, g_split_run{-2};

// Split walks (bwd_split_plan.hpp), on: SparseBackward.SplitWalks passed on an H100 and the A/B of session 12
// (scripts/ab/session12.txt) gave sinks + window 121 -> 164 / 168 TFLOP/s at 16k / 32k, window and random 10%
// unchanged (the plan leaves them whole). OMNIATTN_BWD_SPLIT_RUN=0 turns it off, > 0 forces runs of that length.
constexpr bool kSplitWalksByDefault = true;

}  // namespace

void set_bwd_order_override(const BwdOrderOverride& o) {
  g_det_overlap.store(o.det_overlap);
  g_sparse_chunk.store(o.sparse_chunk);
  g_split_run.store(o.split_run);
}

void BwdLaunch::bind_workspace(void* base) {
  auto* bytes = static_cast<uint8_t*>(base);
  params.lse_log2 = reinterpret_cast<float*>(bytes + lse_offset);
  params.dsum = reinterpret_cast<float*>(bytes + dsum_offset);
  params.dq_accum = reinterpret_cast<float*>(bytes + dq_offset);
  params.dsink_part = params.dsink ? reinterpret_cast<float*>(bytes + dsink_offset) : nullptr;
  params.semaphore = params.deterministic ? reinterpret_cast<int32_t*>(bytes + semaphore_offset) : nullptr;
  params.dkv_partial = split.slots > 0 ? reinterpret_cast<float*>(bytes + dkv_offset) : nullptr;
}

void BwdLaunch::use_host_metadata() {
  if (!seqs.empty()) params.seqs = seqs.data();
  if (!split.units.empty()) {
    params.units = split.units.data();
    params.split_tiles = split.split_tiles.data();
  }
}

std::string bwd_layout_refusal(const BackwardProblem& p, const BwdTuning& t) {
  const std::pair<const Operand*, const char*> operands[] = {
      {&p.q, "q"},           {&p.k, "k"},           {&p.v, "v"},          {&p.out, "out"},
      {&p.dout, "dout"},     {&p.grad_q, "grads.dq"}, {&p.grad_k, "grads.dk"}, {&p.grad_v, "grads.dv"}};
  for (const auto& [o, name] : operands)
    if (!rows_aligned(*o))
      return std::string("needs 16-byte aligned rows: ") + name +
             " must start at a 16-byte boundary and have batch/token/head strides that are multiples of 8 elements";
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  int64_t blocks = 0;
  for (int64_t b = 0; b < p.batch; ++b) blocks += ceil_div(p.q_len[b], t.block_m);
  if (p.max_q_len > kIntMax - t.block_m || p.max_k_len > kIntMax - t.block_n || blocks * p.hq > kIntMax / t.block_m)
    return "supports fewer than 2^31 query rows and keys per sequence and 2^31 padded query rows x heads per call";
  if (p.batch > 65535 || p.hq > 65535) return "supports at most 65535 sequences and 65535 query heads per call";
  if (p.sparse) {
    const SparseMask& m = *p.sparse;
    if (m.host_element_mask != nullptr)
      return "block-sparse masks with a host_element_mask (a CPU-only functor) run on the CPU backends only";
    // A CTA's KV tile must lie in one mask KV block and a mask query block must be whole query tiles.
    const int64_t tile_keys = std::min<int64_t>(t.block_n, m.block_k);
    if (m.block_k % tile_keys != 0 || t.block_n % tile_keys != 0 || m.block_q % t.block_m != 0)
      return "block-sparse masks need block_k and block_q that are multiples of the backward's " +
             std::to_string(t.block_n) + "-key / " + std::to_string(t.block_m) + "-row tiles (given " +
             std::to_string(m.block_q) + " x " + std::to_string(m.block_k) + ")";
  }
  return {};
}

BwdLaunch make_bwd_launch(const BackwardProblem& p, const BwdTuning& t, int dq_partials) {
  BwdLaunch l;
  BwdParams& f = l.params;
  f.q = p.q.data, f.k = p.k.data, f.v = p.v.data, f.out = p.out.data, f.dout = p.dout.data;
  f.dq = p.grad_q.data, f.dk = p.grad_k.data, f.dv = p.grad_v.data;
  f.q_batch = p.q.batch, f.q_token = p.q.token, f.q_head = p.q.head;
  f.k_batch = p.k.batch, f.k_token = p.k.token, f.k_head = p.k.head;
  f.v_batch = p.v.batch, f.v_token = p.v.token, f.v_head = p.v.head;
  f.o_batch = p.out.batch, f.o_token = p.out.token, f.o_head = p.out.head;
  f.do_batch = p.dout.batch, f.do_token = p.dout.token, f.do_head = p.dout.head;
  f.dq_batch = p.grad_q.batch, f.dq_token = p.grad_q.token, f.dq_head = p.grad_q.head;
  f.dk_batch = p.grad_k.batch, f.dk_token = p.grad_k.token, f.dk_head = p.grad_k.head;
  f.dv_batch = p.grad_v.batch, f.dv_token = p.grad_v.token, f.dv_head = p.grad_v.head;
  f.lse = p.lse.data;
  f.lse_batch = p.lse.batch, f.lse_head = p.lse.head, f.lse_token = p.lse.token;

  f.batch = static_cast<int32_t>(p.batch);
  f.hq = static_cast<int32_t>(p.hq);
  f.hkv = static_cast<int32_t>(p.hkv);
  f.group = static_cast<int32_t>(p.group());

  // Keys per CTA: the tile's, or a smaller mask KV block's (bwd_params.hpp).
  const int64_t tile_keys = p.sparse ? std::min<int64_t>(t.block_n, p.sparse->block_k) : t.block_n;
  f.tile_keys = static_cast<int32_t>(tile_keys);
  int64_t max_blocks = 0, max_tiles = 0, total_blocks = 0;
  bool uniform = true;
  for (int64_t b = 0; b < p.batch; ++b) {
    max_blocks = std::max(max_blocks, ceil_div(p.q_len[b], t.block_m));
    max_tiles = std::max(max_tiles, ceil_div(p.k_stored[b], tile_keys));
    uniform = uniform && p.q_begin[b] == 0 && p.k_begin[b] == 0 && p.q_len[b] == p.q_len[0] &&
              p.k_len[b] == p.k_len[0] && p.k_stored[b] == p.k_stored[0];
  }
  f.m_blocks = static_cast<int32_t>(max_blocks);
  f.n_blocks = static_cast<int32_t>(max_tiles);
  if (uniform && p.batch > 0) {
    f.uniform_q_len = static_cast<int32_t>(p.q_len[0]);
    f.uniform_k_len = static_cast<int32_t>(p.k_len[0]);
    f.uniform_k_stored = static_cast<int32_t>(p.k_stored[0]);
    total_blocks = max_blocks * p.batch;
  } else {
    l.seqs.resize(static_cast<size_t>(p.batch));
    for (int64_t b = 0; b < p.batch; ++b) {
      BwdSeqInfo& s = l.seqs[static_cast<size_t>(b)];
      s.q_begin = p.q_begin[b];
      s.k_begin = p.k_begin[b];
      s.q_len = static_cast<int32_t>(p.q_len[b]);
      s.k_len = static_cast<int32_t>(p.k_len[b]);
      s.k_stored = static_cast<int32_t>(p.k_stored[b]);
      s.m_block0 = static_cast<int32_t>(total_blocks);
      total_blocks += ceil_div(p.q_len[b], t.block_m);
    }
  }
  f.total_m_blocks = static_cast<int32_t>(total_blocks);

  f.window_left = p.window_left;
  f.window_right = p.window_right;
  f.sinks = p.sinks;
  f.scale = static_cast<float>(p.scale);
  f.softcap = static_cast<float>(p.softcap);
  f.general_logits = p.softcap > 0 || p.alibi != nullptr;
  f.scale_log2 = static_cast<float>(p.scale * 1.4426950408889634);
  f.alibi = p.alibi;
  f.alibi_batch_stride = p.alibi_batch_stride;
  f.sink_logits = p.sink_logits;
  f.dsink = p.dsink_logits;
  f.deterministic = p.deterministic;
  // A right-bounded mask (causal, window_right >= 0): the KV tile nearest the diagonal reaches a query block
  // first, so the deterministic order is descending (no CTA waits in the ideal schedule); else ascending.
  f.dq_descending = p.deterministic && p.window_right >= 0;
  // Experiments (environment, read once per process): OMNIATTN_BWD_ROTATE=0, the unrotated sweep;
  // OMNIATTN_BWD_DET_CHUNK=<tiles>, the deterministic launch chunk (0: a head at a time);
  // OMNIATTN_BWD_DET_OVERLAP=0, the sm_90a dQ writer's serial deterministic order.
  static const bool rotate_allowed = env_int("OMNIATTN_BWD_ROTATE", 1) != 0;
  static const int det_chunk = env_int("OMNIATTN_BWD_DET_CHUNK", kDeterministicChunk);
  // OMNIATTN_BWD_SPARSE_CHUNK=<tiles>, the block-sparse launch chunk (0: a head at a time). Tests override both.
  static const int det_overlap_env = env_int("OMNIATTN_BWD_DET_OVERLAP", 1);
  static const int sparse_chunk_env = env_int("OMNIATTN_BWD_SPARSE_CHUNK", 1);
  auto chosen = [](const std::atomic<int>& set, int env) { const int v = set.load(); return v >= 0 ? v : env; };
  const int sparse_chunk = chosen(g_sparse_chunk, sparse_chunk_env);
  f.dq_overlap = chosen(g_det_overlap, det_overlap_env) != 0;
  f.rotate_steps = rotate_allowed && !p.deterministic && p.window_right < 0 && !p.sparse;
  // Block-sparse: tile 0 of every head, then tile 1 of every head, ... A head-major launch started the last heads'
  // sink tiles (listed by every query block: 256 steps against a window tile's 18 at 16k) in the last wave, where
  // they ran alone for most of the kernel's time (sinks + window backward 2.4x the window's, H100 session 8).
  // The leading tiles are the heavy ones of the generators' patterns (sinks, causal, prefix); the dense backward
  // keeps a head at a time (a head's Q / dO stay hot in L2).
  f.dq_chunk = p.deterministic ? det_chunk : p.sparse ? sparse_chunk : 0;
  if (p.sparse) {
    f.block_sparse = true;
    f.sparse = make_sparse_params(*p.sparse);
    f.q_tiles_per_block = static_cast<int32_t>(p.sparse->block_q / t.block_m);
    f.k_tiles_per_block = static_cast<int32_t>(p.sparse->block_k / tile_keys);
    // Block masks with a right-bounded element rule (causal windows, documents, ...) list blocks near the
    // diagonal too: the same descending order keeps their deterministic turns in step.
    f.dq_descending = p.deterministic && (p.window_right >= 0 || p.sparse->element.window_right >= 0);
    // Long walks cut into runs (bwd_split_plan.hpp); the deterministic mode keeps one CTA per tile (its dQ turns
    // rely on the launch order). OMNIATTN_BWD_SPLIT_RUN: -1 the plan's rule, 0 no split, > 0 runs of that many
    // blocks (default: kSplitWalksByDefault); a test's override (>= -1) comes first.
    static const int split_run_env = env_int("OMNIATTN_BWD_SPLIT_RUN", kSplitWalksByDefault ? -1 : 0);
    const int split_set = g_split_run.load();
    const int split_run = split_set >= -1 ? split_set : split_run_env;
    if (!p.deterministic && split_run != 0 && !p.sparse->kv_block_load.empty())
      l.split = plan_bwd_split(p.sparse->kv_block_load, f.n_blocks, f.k_tiles_per_block,
                               static_cast<int>(p.sparse->q_blocks), split_run > 0 ? split_run : 0);
  }
  f.kv_units = l.split.units.empty() ? f.n_blocks : static_cast<int32_t>(l.split.units.size());
  f.split_tile_count = static_cast<int32_t>(l.split.split_tiles.size());

  // Workspace: row blocks = total_blocks * hq.
  const auto row_blocks = static_cast<std::size_t>(total_blocks * p.hq);
  const auto rows = row_blocks * static_cast<std::size_t>(t.block_m);
  std::size_t at = 0;
  l.lse_offset = at, at = align256(at + rows * sizeof(float));
  l.dsum_offset = at, at = align256(at + rows * sizeof(float));
  f.dq_partials = dq_partials;
  f.dq_partial_floats = static_cast<int64_t>(rows) * p.d;
  l.dq_offset = at, at = align256(at + dq_partials * rows * static_cast<std::size_t>(p.d) * sizeof(float));
  l.dsink_offset = at, at = align256(at + (p.dsink_logits ? row_blocks : 0) * sizeof(float));
  l.semaphore_offset = at, at = align256(at + (p.deterministic ? row_blocks : 0) * sizeof(int32_t));
  const auto slot_floats = static_cast<std::size_t>(p.batch * p.hkv * tile_keys * (p.d + p.dv));
  l.dkv_offset = at, at = align256(at + static_cast<std::size_t>(l.split.slots) * slot_floats * sizeof(float));
  l.workspace_bytes = at;
  return l;
}

}  // namespace omniattn::detail::cuda
